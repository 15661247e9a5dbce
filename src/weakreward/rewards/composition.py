"""Composite rewards: weighted sums, gates and clipping.

Composites are rewards themselves: they union their parts' `needs`, keep each part's details under the
part's name (``"<part>/score"``, ``"<part>/<key>"``), and forward `state_dict` to their parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from weakreward.rewards.base import Reward, RewardResult, reward_dataclass
from weakreward.rollouts import Rollouts


def _part_names(parts: Sequence[Reward]) -> list[str]:
    """Each part's name, with ``#2``, ``#3``... appended to repeats so detail keys never collide."""
    seen: dict[str, int] = {}
    names = []
    for part in parts:
        seen[part.name] = seen.get(part.name, 0) + 1
        names.append(part.name if seen[part.name] == 1 else f"{part.name}#{seen[part.name]}")
    return names


def namespaced(name: str, result: RewardResult, *, with_score: bool = True) -> dict[str, Sequence[Any]]:
    """``result``'s details under ``"<name>/<key>"`` (and its scores as ``"<name>/score"``).

    Args:
        name: The prefix.
        result: The part's result.
        with_score: Include the scores as ``<name>/score``.
    """
    details: dict[str, Sequence[Any]] = {f"{name}/score": result.scores.tolist()} if with_score else {}
    details.update({f"{name}/{k}": v for k, v in result.details.items()})
    return details


class Wrapper(Reward):
    """Base of rewards that transform one ``inner`` reward (`NoisyReward`, `NoiseCorrected`): `needs`,
    `sees_groups` and `check` are the inner reward's, and the state nests the inner state under
    ``"inner"``."""

    inner: Reward

    @property
    def needs(self) -> frozenset[str]:
        return self.inner.needs

    @property
    def sees_groups(self) -> bool:
        return self.inner.sees_groups

    def check(self, rollouts: Rollouts) -> None:
        self.inner.check(rollouts)

    def inner_result(self, rollouts: Rollouts) -> RewardResult:
        """The inner reward's result, its length checked."""
        result = self.inner.compute(rollouts)
        if len(result) != len(rollouts):
            raise RuntimeError(f"{self.inner.name} returned {len(result)} scores for {len(rollouts)} completions")
        return result

    def state_dict(self) -> dict[str, Any]:
        """``{"inner": <inner state>}``."""
        return {"inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state.get("inner", {}))


class _Composite(Reward):
    parts: tuple[Reward, ...]

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(p.needs for p in self.parts))

    @property
    def sees_groups(self) -> bool:
        return any(p.sees_groups for p in self.parts)

    def check(self, rollouts: Rollouts) -> None:
        for part in self.parts:
            part.check(rollouts)

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in zip(_part_names(self.parts), self.parts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in zip(_part_names(self.parts), self.parts):
            if name in state:
                part.load_state_dict(state[name])


@reward_dataclass
class WeightedSum(_Composite):
    """``bias + Σ_i weights[i] · parts[i]``; NaN where any part is NaN.

    Built by ``a + b``, ``w * a``, ``a - b`` and ``a + 1.0``; nested sums are flattened.

    Examples:
        >>> from weakreward import ExactMatch
        >>> r = 0.5 * ExactMatch() + 0.25
        >>> r.score(["\\\\boxed{4}"], references=["4"]).scores.tolist()
        [0.75]
    """

    parts: tuple[Reward, ...]
    weights: tuple[Annotated[float, Field(allow_inf_nan=False)], ...]
    bias: Annotated[float, Field(allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _one_weight_per_part(self) -> WeightedSum:
        if len(self.parts) != len(self.weights):
            raise ValueError(f"{len(self.parts)} parts but {len(self.weights)} weights")
        return self

    @property
    def name(self) -> str:
        terms = [p.name if w == 1.0 else f"{w:g}*{p.name}" for p, w in zip(self.parts, self.weights)]
        if self.bias:
            terms.append(f"{self.bias:g}")
        return "+".join(terms)

    @classmethod
    def of(cls, a: Reward | float, b: Reward | float) -> WeightedSum:
        """``a + b`` as one flat sum: nested sums merge their parts, numbers go to the bias.

        Args:
            a: A reward, a sum or a number.
            b: A reward, a sum or a number.
        """
        parts: list[Reward] = []
        weights: list[float] = []
        bias = 0.0
        for x in (a, b):
            if isinstance(x, WeightedSum):
                parts += x.parts
                weights += x.weights
                bias += x.bias
            elif isinstance(x, Reward):
                parts.append(x)
                weights.append(1.0)
            elif isinstance(x, (int, float, np.number)):
                bias += float(x)
            else:
                raise TypeError(f"cannot add a reward and a {type(x).__name__}")
        return cls(parts=tuple(parts), weights=tuple(weights), bias=bias)

    def compute(self, rollouts: Rollouts) -> RewardResult:
        total = np.full(len(rollouts), self.bias)
        details: dict[str, Sequence[Any]] = {}
        for name, part, weight in zip(_part_names(self.parts), self.parts, self.weights):
            result = part.compute(rollouts)
            total = total + weight * result.scores
            details.update(namespaced(name, result))
        return RewardResult(total, details)


@reward_dataclass
class Gate(_Composite):
    """``reward`` where ``condition`` scores above ``threshold``, else ``otherwise``.

    A NaN condition keeps the gate closed (the condition could not confirm). Typical use: only pay
    correctness when the format is right, ``Gate(FormatReward(...), MathVerifier())``.

    Examples:
        >>> from weakreward import ExactMatch
        >>> g = Gate(ExactMatch(), 2.0 * ExactMatch())
        >>> g.score(["\\\\boxed{4}", "\\\\boxed{5}"], references=["4", "4"]).scores.tolist()
        [2.0, 0.0]
    """

    condition: Reward
    reward: Reward
    threshold: float = 0.0
    otherwise: float = 0.0
    parts: tuple[Reward, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", (self.condition, self.reward))

    @property
    def name(self) -> str:
        return f"gate({self.condition.name},{self.reward.name})"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        cond = self.condition.compute(rollouts)
        inner = self.reward.compute(rollouts)
        open_ = np.nan_to_num(cond.scores, nan=-np.inf) > self.threshold
        scores = np.where(open_, inner.scores, self.otherwise)
        details: dict[str, Sequence[Any]] = {"open": open_.tolist()}
        names = _part_names(self.parts)
        details.update(namespaced(names[0], cond))
        details.update(namespaced(names[1], inner))
        return RewardResult(scores, details)


@reward_dataclass
class Clip(_Composite):
    """``reward`` clipped to ``[low, high]`` (either bound may be None); NaN stays NaN.

    Examples:
        >>> from weakreward import ExactMatch
        >>> Clip(3.0 * ExactMatch(), high=1.0).score(["\\\\boxed{4}"], references=["4"]).scores.tolist()
        [1.0]
    """

    reward: Reward
    low: float | None = None
    high: float | None = None
    parts: tuple[Reward, ...] = field(init=False)

    @model_validator(mode="after")
    def _ordered(self) -> Clip:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", (self.reward,))

    @property
    def name(self) -> str:
        return f"clip({self.reward.name})"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        inner = self.reward.compute(rollouts)
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        return RewardResult(np.clip(inner.scores, low, high), namespaced(self.reward.name, inner))
