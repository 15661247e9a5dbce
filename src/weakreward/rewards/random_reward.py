"""`RandomReward`: a coin flip per completion, the spurious-rewards baseline."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts


def _uniform(seed: int, call: int, position: int) -> float:
    """A uniform draw in [0, 1) keyed by ``(seed, call, position)``: the same in every process."""
    digest = hashlib.blake2b(f"{seed}:{call}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class RandomReward(Reward):
    """Bernoulli(``p``) per completion, independent of the text: the random-reward baseline.

    Shao et al. 2025, "Spurious Rewards: Rethinking Training Signals in RLVR" (arXiv 2506.10947): GRPO
    with ``r_i ~ Bernoulli(p)`` (they use ``p = 0.5``), which carries no information about correctness,
    still improves some models (Qwen2.5-Math) through the clipping bias, while others do not improve.

        ``r_i = 1[u(seed, call, i) < p]``,  ``u`` = blake2b(seed, call, i) / 2^64 ∈ [0, 1)

    where ``call`` counts this reward's calls and ``i`` is the completion's position in the batch. No
    global random state is used: the same seed and the same sequence of calls give the same scores in
    every process, and `state_dict` holds the call counter so a resumed run continues the same stream.

    Args:
        p: Probability of a reward of 1, in ``[0, 1]``.
        seed: Seed of the hash-based generator (an int).

    Scores: 0 or 1 for every completion. ``details``: ``draw`` (the uniform value ``u``).

    Examples:
        >>> a, b = RandomReward(p=0.5, seed=7), RandomReward(p=0.5, seed=7)
        >>> a.score(["x"] * 6).scores.tolist() == b.score(["x"] * 6).scores.tolist()
        True
        >>> a.state_dict()
        {'calls': 1}
    """

    needs = frozenset()
    name = "random"

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomReward.p must be a probability in [0, 1], got {p!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"RandomReward.seed must be an int, got {type(seed).__name__}")
        self.p = float(p)
        self.seed = int(seed)
        self._calls = 0

    def compute(self, rollouts: Rollouts) -> RewardResult:
        call = self._calls
        self._calls += 1
        draws = [_uniform(self.seed, call, i) for i in range(len(rollouts))]
        scores = (np.asarray(draws, dtype=np.float64) < self.p).astype(np.float64)
        return RewardResult(scores, {"draw": draws})

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self._calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        calls = state.get("calls")
        if isinstance(calls, bool) or not isinstance(calls, (int, np.integer)) or calls < 0:
            raise ValueError(f"RandomReward.load_state_dict: 'calls' must be a non-negative int, got {calls!r}")
        self._calls = int(calls)

    def __repr__(self) -> str:
        return f"RandomReward(p={self.p}, seed={self.seed})"
