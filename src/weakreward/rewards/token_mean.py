"""`TokenMeanReward`: the shared base of the confidence rewards that average a per-token statistic."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts


class TokenMeanReward(Reward):
    """``sign · (1/|y|) Σ_t stat_t`` over the completion tokens of one `TokenStats` field.

    Subclasses set `stat` (a `TokenStats` field) and `sign`. The mean is taken in float64 over the
    positions where ``mask`` is True; values at padded positions are ignored even if they are NaN.

    Scores: the signed mean; NaN for a completion with no tokens (reason ``"empty"``) or whose
    statistic is not finite (reason ``"non-finite"``). ``details``: ``tokens`` (completion length in
    tokens) and ``reason`` (``"ok"``, ``"empty"``, ``"non-finite"``).
    """

    stat: ClassVar[str]
    sign: ClassVar[float] = 1.0

    @property
    def needs(self) -> frozenset[str]:
        return frozenset({f"token_stats.{self.stat}"})

    def compute(self, rollouts: Rollouts) -> RewardResult:
        stats = rollouts.token_stats
        assert stats is not None  # guaranteed by check(): `needs` names token_stats
        mask = stats.mask.detach().cpu().bool()
        values = getattr(stats, self.stat).detach().cpu().to(torch.float64)
        count = mask.sum(-1)
        total = torch.where(mask, values, torch.zeros_like(values)).sum(-1)
        mean = (self.sign * total / count.clamp(min=1)).numpy()
        count_np = count.numpy()
        empty = count_np == 0
        bad = ~empty & ~np.isfinite(mean)
        scores = np.where(empty | bad, np.nan, mean)
        reasons = np.where(empty, "empty", np.where(bad, "non-finite", "ok")).tolist()
        return RewardResult(scores, {"tokens": count_np.tolist(), "reason": reasons})

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))
