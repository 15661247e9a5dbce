"""Entropy-minimisation rewards: `TokenEntropy` (the next-token distribution) and `TrajectoryEntropy`
(the sampled tokens)."""

from __future__ import annotations

from weakreward.rewards.base import reward_dataclass
from weakreward.rewards.token_mean import TokenMeanReward


@reward_dataclass
class TokenEntropy(TokenMeanReward):
    """Negative mean token entropy: rewards confident next-token distributions.

    EM-RL (Agarwal et al. 2025, "The Unreasonable Effectiveness of Entropy Minimization in LLM
    Reasoning", arXiv 2505.15134, the token-level variant) and RENT (Prabhudesai et al. 2025,
    "Maximizing Confidence Alone Improves Reasoning", arXiv 2505.22660):

        ``r(y) = −(1/|y|) Σ_t H(p_t) = (1/|y|) Σ_t Σ_v p_t(v) log p_t(v)``

    with ``p_t`` the (temperature-scaled) next-token distribution at completion token ``t``. It is
    ≤ 0 and reaches 0 when every distribution is one-hot. Reads ``Rollouts.token_stats.entropy``.

    Scores: the mean; NaN with reason ``"empty"`` for a completion with no tokens (see `TokenMeanReward`).

    Examples:
        >>> import torch
        >>> from weakreward import Rollouts, token_stats_from_logits
        >>> ts = token_stats_from_logits(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 2]]))  # uniform over 4
        >>> TokenEntropy()(Rollouts.build(["abc"], token_stats=ts)).scores.round(4).tolist()  # −log 4
        [-1.3863]
    """

    stat = "entropy"
    sign = -1.0
    name: str = "token_entropy"


@reward_dataclass
class TrajectoryEntropy(TokenMeanReward):
    """Mean log-probability of the sampled tokens: a one-sample estimate of −(trajectory entropy) / |y|.

    EM-RL's trajectory-level variant (Agarwal et al. 2025, arXiv 2505.15134): the entropy of the
    sequence distribution ``H(π(·|x)) = −E_y[log π(y|x)]`` is estimated by the sampled completion itself,
    so the reward is its length-normalised log-likelihood

        ``r(y) = (1/|y|) Σ_t log p_t(y_t)``.

    It is ≤ 0 and reaches 0 when every sampled token had probability 1. Reads
    ``Rollouts.token_stats.logprobs`` (temperature applied, as sampled).

    Scores: the mean; NaN with reason ``"empty"`` for a completion with no tokens (see `TokenMeanReward`).

    Examples:
        >>> import torch
        >>> from weakreward import Rollouts, token_stats_from_logits
        >>> ts = token_stats_from_logits(torch.zeros(1, 2, 4), torch.tensor([[0, 1]]))  # p = 1/4 each
        >>> TrajectoryEntropy()(Rollouts.build(["ab"], token_stats=ts)).scores.round(4).tolist()  # log(1/4)
        [-1.3863]
    """

    stat = "logprobs"
    name: str = "trajectory_entropy"
