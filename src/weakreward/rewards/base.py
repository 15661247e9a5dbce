"""The one contract's output side: `Reward` (rollouts in) and `RewardResult` (scores out)."""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import numpy as np
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from typing_extensions import dataclass_transform

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


_R = TypeVar("_R", bound=type)

# strict: no silent coercion (True is not 1, "2" is not 2; an int is still a float). Rewards hold other
# rewards and verifiers, which pydantic checks by isinstance.
_REWARD_CONFIG = ConfigDict(strict=True, arbitrary_types_allowed=True)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def reward_dataclass(cls: _R) -> _R:
    """Declare a reward's configuration: a frozen, validated (pydantic) dataclass, the one construction
    of every reward in weakreward.

    Fields are the configuration, with types and ``Annotated[..., Field(ge=..., le=...)]`` constraints
    that pydantic checks at construction: a bad value raises ``ValueError`` with one
    ``"<Class>.<field>: <problem>"`` per problem (pydantic's messages). Cross-field checks go in a ``@model_validator(mode="after")``;
    derived or mutable state (worker pools, call counters) lives in private attributes set with
    ``object.__setattr__`` in ``__post_init__``. The instance is frozen, compares by identity
    (``eq=False``: a reward is a stateful object, not a value), pickles by its fields, and keeps its
    ``seed`` and counters through a pickle round trip.

    Examples:
        >>> @reward_dataclass
        ... class Constant(Reward):
        ...     value: float = 1.0
        ...     name: str = "constant"
        ...     def compute(self, rollouts):
        ...         return RewardResult(np.full(len(rollouts), self.value))
        >>> Constant(value=2).score(["a", "b"]).scores.tolist()
        [2.0, 2.0]
        >>> Constant(value="high")
        Traceback (most recent call last):
        ValueError: Constant.value: Input should be a valid number
    """
    built = pydantic_dataclass(frozen=True, eq=False, config=_REWARD_CONFIG)(cls)
    validating_init = built.__init__

    @functools.wraps(validating_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validating_init(self, *args, **kwargs)
        except ValidationError as error:
            positional = [f.name for f in dataclasses.fields(built) if f.init]
            raise ValueError(validation_message(built.__name__, error, positional)) from None

    setattr(built, "__init__", __init__)  # noqa: B010 - replacing the generated __init__
    return cast(_R, built)


def validation_message(owner: str, error: ValidationError, positional: Sequence[str] = ()) -> str:
    """One ``"<owner>.<field>: <problem>"`` per problem of a pydantic ``ValidationError``, joined by ``"; "``.

    Args:
        owner: The class being configured (``"NoisyReward"``).
        error: What pydantic raised.
        positional: The field names of positional arguments, in order (pydantic reports a positional
            argument by its index).
    """
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        if loc and isinstance(loc[0], int) and loc[0] < len(positional):
            loc[0] = positional[loc[0]]
        where = ".".join(str(p) for p in loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{owner}.{where}: {message}" if where else f"{owner}: {message}")
    return "; ".join(lines)


class Reward(abc.ABC):
    """A reward: ``reward(rollouts) -> RewardResult``.

    Every reward has a readable `name` and `needs` (what it reads from `Rollouts`: ``"references"``,
    ``"token_stats"``, ``"token_stats.entropy"``, ``"extras.<column>"``...), both read-only attributes
    declared here; subclasses implement `compute`. Calling the reward checks `needs` first and raises a
    ``ValueError`` naming what is missing: a missing column is a configuration mistake. A bad
    *completion* never raises: it gets a score (0 or NaN, documented per reward) and a reason in
    ``details``.

    One construction for every reward: `reward_dataclass` (a frozen, validated pydantic dataclass; see
    there). A reward's configurable ``name`` is a field with its default; a name or `needs` derived from
    the configuration (composites, wrappers) is a property.

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

    @property
    def name(self) -> str:
        """The name in composites, ``details`` keys and logs."""
        return "reward"

    @property
    def needs(self) -> frozenset[str]:
        """What `compute` reads from `Rollouts`; `check` enforces it."""
        return frozenset()

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

        Args:
            completions: The completions to score.
            references: Gold labels, one per completion (None where unlabeled).
            prompts: The prompts (text or chat messages); default ``""``.
            group_ids: Equal ids = one GRPO group; default: by prompt.
            **extras: Other `Rollouts.extras` columns, one entry per completion.

        Examples:
            >>> from weakreward import ExactMatch
            >>> ExactMatch().score(["\\\\boxed{4}", "\\\\boxed{5}"], references=["4", "4"]).scores.tolist()
            [1.0, 0.0]
        """
        return self(
            Rollouts.build(
                completions, prompts=prompts, references=references, group_ids=group_ids, token_stats=None, **extras
            )
        )

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
        """``Gate(self, reward)``: ``reward`` where this scores above ``threshold``, else 0.

        Args:
            reward: The reward paid where this one is above ``threshold``.
            threshold: The gate opens above it.
        """
        from weakreward.rewards.composition import Gate

        return Gate(self, reward, threshold=threshold)

    def clip(self, low: float | None = None, high: float | None = None) -> Clip:
        """``Clip(self, low, high)``.

        Args:
            low: Lower bound, or None.
            high: Upper bound, or None.
        """
        from weakreward.rewards.composition import Clip

        return Clip(self, low=low, high=high)

    # -- other trainers -------------------------------------------------------------------------
    def as_trl(self, reference_column: str = "answer", **options: Any) -> Any:
        """This reward as a TRL ``reward_funcs`` entry: `weakreward.adapters.trl.TRLReward` (``options``:
        ``num_generations``, ``name``).

        Args:
            reference_column: The dataset column TRL passes as the reference.
            **options: `TRLReward` options.
        """
        from weakreward.adapters.trl import TRLReward

        return TRLReward(self, reference_column=reference_column, **options)

    def as_verl(self, batch: bool | None = None, **options: Any) -> Any:
        """This reward as verl's ``compute_score``: `weakreward.adapters.verl.VerlReward` (``options``:
        ``group_keys``, ``group_size``, ``nan_score``).

        Args:
            batch: verl's batched reward manager (True) or one call per sample (False); None = decide from the reward.
            **options: `VerlReward` options.
        """
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

    @property
    def needs(self) -> frozenset[str]:
        return frozenset({"references"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "compare" in cls.__dict__ and not getattr(cls.__dict__["compare"], "_checks_lengths", False):
            setattr(cls, "compare", _checked_compare(cls.__dict__["compare"]))  # noqa: B010 - a wrapped method

    @abc.abstractmethod
    def extract(self, completion: str) -> str | None:
        """The answer in ``completion``, or None when there is none."""

    @abc.abstractmethod
    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Element-wise equivalence of ``answers[i]`` to ``golds[i]`` (gold first).

        Every subclass's ``compare`` is wrapped so that ``len(golds) != len(answers)`` raises
        ``ValueError`` before it runs: implementations need not check.

        Args:
            golds: The trusted side of each pair (a reference, or a cluster representative).
            answers: Extracted answers, one per gold.

        Returns:
            One `Verdict` per pair.
        """

    def compute(self, rollouts: Rollouts) -> RewardResult:
        answers = [self.extract(c) for c in rollouts.completions]
        scores = np.zeros(len(rollouts))
        reasons: list[str] = ["no answer"] * len(rollouts)
        todo: list[int] = []
        golds: list[str] = []
        found: list[str] = []
        for i, (gold, answer) in enumerate(zip(rollouts.references, answers)):
            if gold is None:
                scores[i] = math.nan
                reasons[i] = "no reference"
            elif answer is not None:
                todo.append(i)
                golds.append(str(gold))
                found.append(answer)
        verdicts = self.compare(golds, found) if todo else []
        for i, verdict in zip(todo, verdicts):
            scores[i] = 1.0 if verdict.match else 0.0
            reasons[i] = verdict.reason
        return RewardResult(scores, {"answer": answers, "reason": reasons})


def _checked_compare(compare: Callable[..., list[Verdict]]) -> Callable[..., list[Verdict]]:
    """``compare`` with the one length check of every verifier in front."""

    @functools.wraps(compare)
    def checked(self: Verifier, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        if len(golds) != len(answers):
            raise ValueError(f"{type(self).__name__}.compare: {len(golds)} golds but {len(answers)} answers")
        return compare(self, golds, answers)

    setattr(checked, "_checks_lengths", True)  # noqa: B010 - a marker on the wrapper
    return checked
