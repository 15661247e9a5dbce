"""`ReasoningGymVerifier`: score with a reasoning-gym task's own ``score_answer``.

reasoning-gym (Stojanovski et al. 2025) generates procedural tasks and ships one scorer per task; the
graph tasks of arXiv 2604.18574 (``largest_island``, ``quantum_lock``...) are rewarded by them. The
scorer needs the task's *entry*: ``{"question", "answer", "metadata"}``. In the paper's verl-layout
parquet files the metadata is the ``extra_info`` column (a JSON string with ``source_dataset``, the
grid, the solution...) and the answer is ``reward_model.ground_truth``, so this verifier reads the
reference from `Rollouts.references` and the metadata from ``Rollouts.extras["extra_info"]`` by default.

reasoning-gym is an optional extra: ``pip install 'weakreward[reasoning-gym]'``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from weakreward.rewards.base import RewardResult, Verdict, Verifier
from weakreward.rewards.extraction import answer_is, last_boxed
from weakreward.rollouts import Prompt, Rollouts

__all__ = ["ReasoningGymVerifier"]

_MAX_METADATA_CHARS = 1_000_000


def _reasoning_gym() -> Any:
    try:
        return importlib.import_module("reasoning_gym")
    except ImportError as e:
        raise ImportError(
            "ReasoningGymVerifier needs the optional package reasoning-gym: pip install 'weakreward[reasoning-gym]'"
        ) from e


def _answer_tag(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` (reasoning-gym's own answer format)."""
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    content = text[start + len("<answer>") : end].strip()
    return content or None


def _question(prompt: Prompt) -> str:
    """The text of a prompt: itself, or the last user message of a chat."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt)):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _metadata(value: Any) -> dict[str, Any]:
    """A metadata cell as a dict: a mapping, an Arrow map, a JSON string, or a Python-literal string."""
    from weakreward.data.parquet import as_mapping  # the one decoder of metadata cells (lazy: data imports rewards)

    return as_mapping(value, "metadata")


@dataclass(frozen=True, eq=False)
class ReasoningGymVerifier(Verifier):
    """Score with ``reasoning_gym.get_score_answer_fn(task)(answer, entry)``.

    The answer: the last ``\\boxed{}`` (the paper's prompts ask for one), else the last
    ``<answer>...</answer>`` (reasoning-gym's format), else "the answer is ...". The entry:
    ``{"question": <prompt's user text>, "answer": <reference>, "metadata": <extras[metadata_column]>}``;
    a metadata cell may be a dict, a JSON string (as in the paper's parquet files) or a Python-literal
    string. The task: ``task_name``, or when it is None each row's ``metadata["source_dataset"]``.

    Scores are the scorer's own, in [0, 1]; some tasks give partial credit (``quantum_lock``: 0.5 for a
    correct but longer button sequence). ``details["reason"]``: ``match`` (1), ``partial`` (between 0
    and 1), ``mismatch`` (0), ``no answer`` (0), ``error: ...`` (0; the scorer raised or the metadata
    did not parse), ``no reference`` (NaN).

    `compare` (used to cluster answers for majority vote) has no metadata: two answers match when they
    are equal up to whitespace, or when the task's scorer gives full credit against an entry with empty
    metadata (a scorer that needs the metadata and raises counts as no match).

    Args:
        task_name: A registered reasoning-gym task (``"largest_island"``), or None for per-row tasks.
        metadata_column: The `Rollouts.extras` column with each problem's metadata, or None for tasks
            whose scorer needs only the answer.
        name: Name in composites and logs.

    Examples:
        >>> rg = ReasoningGymVerifier("largest_island")
        >>> rg.score([r"\\boxed{7}", r"\\boxed{5}"], references=["7", "7"], extra_info=['{"solution": 7}'] * 2).scores.tolist()
        [1.0, 0.0]
    """

    task_name: str | None = None
    metadata_column: str | None = "extra_info"
    name: str = "reasoning_gym"
    # Scorers are cached in the plain attribute ``_scorers`` (not a field; not pickled).

    def __post_init__(self) -> None:
        if self.task_name is not None and (not isinstance(self.task_name, str) or not self.task_name):
            raise ValueError(f"ReasoningGymVerifier.task_name must be a task name or None, got {self.task_name!r}")
        if self.metadata_column is not None and (not isinstance(self.metadata_column, str) or not self.metadata_column):
            raise ValueError(
                f"ReasoningGymVerifier.metadata_column must be a column name or None, got {self.metadata_column!r}"
            )
        if self.task_name is None and self.metadata_column is None:
            raise ValueError(
                "ReasoningGymVerifier: set task_name, or metadata_column so that each row's task is read "
                "from metadata['source_dataset']"
            )
        _reasoning_gym()
        object.__setattr__(self, "_scorers", {})
        if self.task_name is not None:
            self._scorer(self.task_name)

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        if self.metadata_column is None:
            return frozenset({"references"})
        return frozenset({"references", f"extras.{self.metadata_column}"})

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_scorers", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_scorers", {})

    def _scorer(self, task: str) -> Callable[..., Any]:
        scorer = self._scorers.get(task)
        if scorer is None:
            rg = _reasoning_gym()
            try:
                scorer = rg.get_score_answer_fn(task)
            except ValueError as e:
                raise ValueError(f"ReasoningGymVerifier.task_name: reasoning-gym has no task {task!r}") from e
            self._scorers[task] = scorer
        return scorer

    def extract(self, completion: str) -> str | None:
        for find in (last_boxed, _answer_tag, answer_is):
            answer = find(completion)
            if answer is not None:
                return answer
        return None

    def _score_one(self, answer: str, entry: dict[str, Any], task: str | None) -> tuple[float, str]:
        if task is None:
            return 0.0, "error: no task name (set task_name or metadata['source_dataset'])"
        try:
            scorer = self._scorer(task)
        except ValueError:
            return 0.0, f"error: unknown task {task!r}"
        try:
            value = float(scorer(answer, entry))
        except Exception as e:  # a task's scorer may raise on odd answers
            return 0.0, f"error: {type(e).__name__}"
        if not math.isfinite(value):
            return 0.0, "error: scorer returned a non-finite score"
        value = min(1.0, max(0.0, value))
        return value, "match" if value >= 1.0 else "partial" if value > 0.0 else "mismatch"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        n = len(rollouts)
        scores = np.zeros(n)
        answers = [self.extract(c) for c in rollouts.completions]
        reasons = ["no answer"] * n
        column = rollouts.extras[self.metadata_column] if self.metadata_column is not None else [None] * n
        for i, (gold, answer) in enumerate(zip(rollouts.references, answers)):
            if gold is None:
                scores[i], reasons[i] = math.nan, "no reference"
                continue
            if answer is None:
                continue
            try:
                metadata = _metadata(column[i])
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                reasons[i] = "error: metadata did not parse"
                continue
            task = self.task_name or metadata.get("source_dataset")
            entry = {"question": _question(rollouts.prompts[i]), "answer": str(gold), "metadata": metadata}
            scores[i], reasons[i] = self._score_one(answer, entry, task)
        return RewardResult(scores, {"answer": answers, "reason": reasons})

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        if len(golds) != len(answers):
            raise ValueError(f"ReasoningGymVerifier.compare: {len(golds)} golds but {len(answers)} answers")
        out = []
        for gold, answer in zip(golds, answers):
            gold, answer = str(gold).strip(), str(answer).strip()
            same = "".join(gold.split()) == "".join(answer.split())
            if not same and self.task_name is not None:
                value, _ = self._score_one(answer, {"question": "", "answer": gold, "metadata": {}}, self.task_name)
                same = value >= 1.0
            out.append(Verdict(same, "match" if same else "mismatch"))
        return out
