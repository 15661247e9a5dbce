"""`SelfCertainty`: the model's confidence, how far its next-token distributions are from uniform (Intuitor)."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field

from weakreward.rewards.base import RewardResult, reward_dataclass
from weakreward.rewards.token_mean import TokenMeanReward
from weakreward.rollouts import Rollouts


@reward_dataclass
class SelfCertainty(TokenMeanReward):
    """Mean self-certainty of the completion's tokens: how far each next-token distribution is from uniform.

    Intuitor (Zhao et al. 2025, "Learning to Reason without External Rewards", arXiv 2505.19590), after
    Kang et al. 2025 ("Scalable Best-of-N Selection for LLMs via Self-Certainty"); arXiv 2604.18574 Eq. 1.
    By default in the units of the paper's released code and of Intuitor's:

        ``r(y) = (1/|y|) Σ_t [logsumexp(z_t) − mean_v(z_t)] = (1/|y|) Σ_t KL(U ‖ p_t) + log V``

    with ``z_t`` the (temperature-scaled) logits at completion token ``t`` and ``V`` the vocabulary size.
    It is ``log V`` for a uniform distribution and grows as the model grows more certain. With
    ``vocab_size=V`` the reward is the KL divergence itself (``log V`` subtracted: 0 for uniform, ≥ 0).

    The two differ by a constant, so group advantages are the same; the saturation step is not, because
    its threshold ``ε·r̄_max`` is relative to the curve's maximum (see the docs page "Matching the
    paper's code"). Reads the ``self_certainty`` column of `Rollouts.token_stats` (the trainer fills it,
    or `weakreward.token_stats_from_logits`), which holds the release's units.

    Scores: the mean; NaN with reason ``"empty"`` for a completion with no tokens (see `TokenMeanReward`).

    Args:
        vocab_size: None (default): the release's ``logsumexp − mean``. An int ``V``: ``KL(U ‖ p)``.

    Examples:
        >>> import torch
        >>> from weakreward import Rollouts, token_stats_from_logits
        >>> logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # [B=1, T=2, V=2]
        >>> ts = token_stats_from_logits(logits, torch.tensor([[0, 0]]))
        >>> rollouts = Rollouts.build(["ab"], token_stats=ts)
        >>> SelfCertainty()(rollouts).scores.round(4).tolist()  # mean of log 2 and logsumexp(2, 0) − 1
        [0.91]
        >>> SelfCertainty(vocab_size=2)(rollouts).scores.round(4).tolist()  # minus log 2: the mean KL
        [0.2169]
    """

    stat = "self_certainty"
    vocab_size: Annotated[int, Field(ge=1)] | None = None
    name: str = "self_certainty"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        result = super().compute(rollouts)
        if self.vocab_size is None:
            return result
        return RewardResult(np.asarray(result.scores) - math.log(self.vocab_size), result.details)
