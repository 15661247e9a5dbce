"""The one contract's output side: `Reward` (rollouts in) and `RewardResult` (scores out)."""

from __future__ import annotations

import abc
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from weakreward.rollouts import Prompt, Rollouts

if TYPE_CHECKING:
    from weakreward.rewards.composition import Clip, Gate, WeightedSum


@dataclass
class RewardResult:
    """Scores and per-completion diagnostics from one reward call.

    Attributes:
        scores: ``[B]`` float64; NaN = could not be scored (see each reward for when).
        details: Per-completion columns (extracted answer, majority label, flipped?, reason...).
            Every column has one entry per completion.

    Examples:
        >>> r = RewardResult(np.array([1.0, 0.0]), {"reason": ["match", "mismatch"]})
        >>> r.log("train/")["train/mean"]
        0.5
    """

    scores: np.ndarray
    details: dict[str, Sequence[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        n = len(self.scores)
        for key, column in self.details.items():
            if len(column) != n:
                raise ValueError(f"RewardResult.details[{key!r}] has {len(column)} entries but there are {n} scores")

    def __len__(self) -> int:
        return len(self.scores)

    def log(self, prefix: str = "") -> dict[str, float]:
        """Flatten into scalar metrics: ``mean``/``std``/``nan_frac`` of the scores, the mean of each
        numeric or boolean detail column, and the fraction of each value of a ``reason`` column."""
        out: dict[str, float] = {}
        s = self.scores
        finite = s[~np.isnan(s)]
        out[f"{prefix}mean"] = float(finite.mean()) if finite.size else math.nan
        out[f"{prefix}std"] = float(finite.std()) if finite.size else math.nan
        out[f"{prefix}nan_frac"] = float(np.isnan(s).mean()) if s.size else 0.0
        for key, column in self.details.items():
            values = list(column)
            if not values:
                continue
            if key == "reason" or key.endswith("/reason"):
                for reason, count in Counter(str(v) for v in values).items():
                    out[f"{prefix}{key}/{reason}"] = count / len(values)
                continue
            numeric = [float(v) for v in values if isinstance(v, (bool, int, float, np.number)) and v is not None]
            if numeric and len(numeric) == sum(v is not None for v in values):
                arr = np.asarray(numeric, dtype=np.float64)
                arr = arr[~np.isnan(arr)]
                if arr.size:
                    out[f"{prefix}{key}"] = float(arr.mean())
        return out


class Reward(abc.ABC):
    """A reward: ``reward(rollouts) -> RewardResult``.

    Subclasses set `needs` (what they read from `Rollouts`: ``"references"``, ``"token_stats"``,
    ``"token_stats.entropy"``, ``"extras.<column>"``...), give a readable `name`, and implement `compute`.
    Calling the reward checks `needs` first and raises a ``ValueError`` naming what is missing: a missing
    column is a configuration mistake. A bad *completion* never raises: it gets a score (0 or NaN,
    documented per reward) and a reason in ``details``.

    Rewards compose: ``a + b``, ``0.5 * a``, ``a - b``, `Gate`, `Clip`. Rewards are small picklable
    objects; any randomness comes from a seed the reward owns (`state_dict` holds its counters so a
    resumed run continues the same noise stream).

    Examples:
        A reward that pays short completions, composed with a verifier:

        >>> import numpy as np
        >>> from weakreward import ExactMatch, Reward, RewardResult
        >>> class Brevity(Reward):
        ...     name = "brevity"
        ...     def compute(self, rollouts):
        ...         return RewardResult(np.array([float(len(c) <= 12) for c in rollouts.completions]))
        >>> reward = ExactMatch() + 0.5 * Brevity()
        >>> reward.score(["\\\\boxed{4}", "it is \\\\boxed{4} indeed"], references=["4", "4"]).scores.tolist()
        [1.5, 1.0]
    """

    needs: frozenset[str] = frozenset()
    name: str = "reward"

    # -- the contract ---------------------------------------------------------------------------
    def __call__(self, rollouts: Rollouts) -> RewardResult:
        self.check(rollouts)
        result = self.compute(rollouts)
        if len(result) != len(rollouts):
            raise RuntimeError(f"{self.name} returned {len(result)} scores for {len(rollouts)} completions")
        return result

    @abc.abstractmethod
    def compute(self, rollouts: Rollouts) -> RewardResult:
        """Score every completion; called by ``__call__`` after `check`."""

    def check(self, rollouts: Rollouts) -> None:
        """Raise ``ValueError`` if ``rollouts`` lacks something in `needs`."""
        for need in self.needs:
            head, _, tail = need.partition(".")
            if head == "token_stats" and rollouts.token_stats is None:
                raise ValueError(
                    f"{self.name} needs token_stats, but the rollouts have none: use GRPOTrainer, or fill them "
                    "with weakreward.token_stats_from_logits(logits, token_ids, mask, temperature)"
                )
            if head == "extras" and tail not in rollouts.extras:
                raise ValueError(
                    f"{self.name} needs the extras column {tail!r}; the rollouts have {sorted(rollouts.extras)}"
                )

    # -- scripts --------------------------------------------------------------------------------
    def score(
        self,
        completions: Sequence[str],
        references: Sequence[str | None] | None = None,
        prompts: Sequence[Prompt] | None = None,
        group_ids: Sequence[Any] | None = None,
        **extras: Sequence[Any],
    ) -> RewardResult:
        """Score plain lists without building `Rollouts` by hand.

        Examples:
            >>> from weakreward import ExactMatch
            >>> ExactMatch().score(["\\\\boxed{4}", "\\\\boxed{5}"], references=["4", "4"]).scores.tolist()
            [1.0, 0.0]
        """
        return self(Rollouts.build(completions, prompts=prompts, references=references, group_ids=group_ids, **extras))

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Mutable state to checkpoint (noise counters); empty for stateless rewards."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    # -- composition ----------------------------------------------------------------------------
    def __add__(self, other: Reward | float) -> WeightedSum:
        from weakreward.rewards.composition import WeightedSum

        return WeightedSum.of(self, other)

    def __radd__(self, other: Reward | float) -> WeightedSum:
        from weakreward.rewards.composition import WeightedSum

        return WeightedSum.of(other, self)

    def __sub__(self, other: Reward | float) -> WeightedSum:
        return self + (-1.0) * other

    def __rsub__(self, other: float) -> WeightedSum:
        return other + (-1.0) * self

    def __neg__(self) -> WeightedSum:
        return (-1.0) * self

    def __mul__(self, weight: float) -> WeightedSum:
        from weakreward.rewards.composition import WeightedSum

        if isinstance(weight, Reward) or not isinstance(weight, (int, float, np.number)):
            return NotImplemented
        return WeightedSum(parts=(self,), weights=(float(weight),))

    __rmul__ = __mul__

    def gate(self, reward: Reward, threshold: float = 0.0) -> Gate:
        """``Gate(self, reward)``: ``reward`` where this scores above ``threshold``, else 0."""
        from weakreward.rewards.composition import Gate

        return Gate(self, reward, threshold=threshold)

    def clip(self, low: float | None = None, high: float | None = None) -> Clip:
        """``Clip(self, low, high)``."""
        from weakreward.rewards.composition import Clip

        return Clip(self, low=low, high=high)

    # -- other trainers -------------------------------------------------------------------------
    def as_trl(self, reference_column: str = "answer", **options: Any) -> Any:
        """This reward as a TRL ``reward_funcs`` entry: `weakreward.adapters.trl.TRLReward` (``options``:
        ``num_generations``, ``name``)."""
        from weakreward.adapters.trl import TRLReward

        return TRLReward(self, reference_column=reference_column, **options)

    def as_verl(self, batch: bool | None = None, **options: Any) -> Any:
        """This reward as verl's ``compute_score``: `weakreward.adapters.verl.VerlReward` (``options``:
        ``group_keys``, ``group_size``, ``nan_score``)."""
        from weakreward.adapters.verl import VerlReward

        return VerlReward(self, batch=batch, **options)

    def as_openrlhf(self, **options: Any) -> Any:
        """This reward as OpenRLHF's ``reward_func``: `weakreward.adapters.openrlhf.OpenRLHFReward`
        (``options``: ``group_size``, ``nan_score``)."""
        from weakreward.adapters.openrlhf import OpenRLHFReward

        return OpenRLHFReward(self, **options)

    @property
    def sees_groups(self) -> bool:
        """True when a completion's score depends on the rest of its group (majority vote)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Verdict(NamedTuple):
    """One verification outcome: ``match`` and why (``"match"``, ``"mismatch"``, ``"timeout"``, ``"error: ..."``).

    Examples:
        >>> from weakreward import ExactMatch
        >>> ExactMatch().compare(["4"], ["4"])
        [Verdict(match=True, reason='match')]
    """

    match: bool
    reason: str


class Verifier(Reward):
    """A reward that extracts an answer and compares it with the reference: 1 on a match, else 0.

    Split as in math-verify: `extract` (completion → answer text or None) then `compare` (gold, answer
    → `Verdict`). `compare` is *gold-first*: the first argument is treated as the trusted label, which
    matters for verifiers that parse the two sides differently. Majority vote reuses `compare` to cluster
    a group's answers by equivalence.

    Scores: 1 match; 0 mismatch, no answer found, timeout or parse error; NaN when the reference is None.
    ``details``: ``answer`` (extracted), ``reason``.

    Examples:
        A verifier that compares integers:

        >>> import re
        >>> from weakreward import Verdict, Verifier
        >>> class IntMatch(Verifier):
        ...     name = "int"
        ...     def extract(self, completion):
        ...         found = re.findall(r"-?\\d+", completion)
        ...         return found[-1] if found else None
        ...     def compare(self, golds, answers):
        ...         return [Verdict(int(g) == int(a), "match" if int(g) == int(a) else "mismatch")
        ...                 for g, a in zip(golds, answers)]
        >>> result = IntMatch().score(["it is 7", "maybe 8", "no idea"], references=["7", "7", None])
        >>> result.scores.tolist(), result.details["reason"]
        ([1.0, 0.0, nan], ['match', 'mismatch', 'no reference'])
    """

    needs = frozenset({"references"})

    @abc.abstractmethod
    def extract(self, completion: str) -> str | None:
        """The answer in ``completion``, or None when there is none."""

    @abc.abstractmethod
    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Element-wise equivalence of ``answers[i]`` to ``golds[i]`` (gold first)."""

    def compute(self, rollouts: Rollouts) -> RewardResult:
        answers = [self.extract(c) for c in rollouts.completions]
        scores = np.zeros(len(rollouts))
        reasons: list[str] = ["no answer"] * len(rollouts)
        todo = []
        for i, (gold, answer) in enumerate(zip(rollouts.references, answers)):
            if gold is None:
                scores[i] = math.nan
                reasons[i] = "no reference"
            elif answer is not None:
                todo.append(i)
        verdicts = self.compare([str(rollouts.references[i]) for i in todo], [answers[i] for i in todo]) if todo else []
        for i, verdict in zip(todo, verdicts):
            scores[i] = 1.0 if verdict.match else 0.0
            reasons[i] = verdict.reason
        return RewardResult(scores, {"answer": answers, "reason": reasons})
