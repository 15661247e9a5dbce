"""`RandomReward`: a coin flip per completion, the spurious-rewards baseline."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from weakreward.rewards.base import Reward, RewardResult, reward_dataclass
from weakreward.rewards.hashing import calls_from_state, uniforms
from weakreward.rollouts import Rollouts


@reward_dataclass
class RandomReward(Reward):
    """Bernoulli(``p``) per completion, independent of the text: the random-reward baseline.

    Shao et al. 2025, "Spurious Rewards: Rethinking Training Signals in RLVR" (arXiv 2506.10947): GRPO
    with ``r_i ~ Bernoulli(p)`` (they use ``p = 0.5``), which carries no information about correctness,
    still improves some models (Qwen2.5-Math) through the clipping bias, while others do not improve.

        ``r_i = 1[u(seed, call, i) < p]``,  ``u`` = `weakreward.rewards.hashing.uniforms` ∈ (0, 1)

    where ``call`` counts this reward's calls and ``i`` is the completion's position in the batch. No
    global random state is used: the same seed and the same sequence of calls give the same scores in
    every process, and `state_dict` holds the call counter so a resumed run continues the same stream.

    Args:
        p: Probability of a reward of 1, in ``[0, 1]``.
        seed: Seed of the hash-based generator (an int).
        name: Name in composites and logs.

    Scores: 0 or 1 for every completion. ``details``: ``draw`` (the uniform value ``u``).

    Examples:
        >>> a, b = RandomReward(p=0.5, seed=7), RandomReward(p=0.5, seed=7)
        >>> a.score(["x"] * 6).scores.tolist() == b.score(["x"] * 6).scores.tolist()
        True
        >>> a.state_dict()
        {'calls': 1}
    """

    p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    seed: int = 0
    name: str = "random"

    _calls: ClassVar[int]  # set per instance in __post_init__ (state, not configuration)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_calls", 0)

    def compute(self, rollouts: Rollouts) -> RewardResult:
        call = self._calls
        object.__setattr__(self, "_calls", call + 1)
        draws = uniforms(self.seed, str(call), [str(i) for i in range(len(rollouts))])
        scores = (draws < self.p).astype(np.float64)
        return RewardResult(scores, {"draw": draws.tolist()})

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self._calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_calls", calls_from_state("RandomReward", state))
