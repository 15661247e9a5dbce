"""`SelfCertainty`: the model's confidence, KL(uniform ‖ p), as a label-free reward (Intuitor)."""

from __future__ import annotations

from weakreward.rewards.base import reward_dataclass
from weakreward.rewards.token_mean import TokenMeanReward


@reward_dataclass
class SelfCertainty(TokenMeanReward):
    """Mean self-certainty of the completion's tokens: how far each next-token distribution is from uniform.

    Intuitor (Zhao et al. 2025, "Learning to Reason without External Rewards", arXiv 2505.19590), after
    Kang et al. 2025 ("Scalable Best-of-N Selection for LLMs via Self-Certainty"); arXiv 2604.18574 Eq. 1:

        ``r(y) = (1/|y|) Σ_t KL(U ‖ p_t) = (1/|y|) Σ_t [logsumexp(z_t) − mean_v(z_t) − log V]``

    with ``z_t`` the (temperature-scaled) logits at completion token ``t`` and ``V`` the vocabulary size.
    It is ≥ 0, 0 for a uniform distribution, and grows as the model grows more certain. Reads the
    ``self_certainty`` column of `Rollouts.token_stats` (the trainer fills it, or
    `weakreward.token_stats_from_logits`).

    Scores: the mean; NaN with reason ``"empty"`` for a completion with no tokens (see `TokenMeanReward`).

    Examples:
        >>> import torch
        >>> from weakreward import Rollouts, token_stats_from_logits
        >>> logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # [B=1, T=2, V=2]
        >>> ts = token_stats_from_logits(logits, torch.tensor([[0, 0]]))
        >>> r = SelfCertainty()(Rollouts.build(["ab"], token_stats=ts))
        >>> r.scores.round(4).tolist()  # the mean of 0 and KL(U ‖ softmax(2, 0))
        [0.2169]
    """

    stat = "self_certainty"
    name: str = "self_certainty"
