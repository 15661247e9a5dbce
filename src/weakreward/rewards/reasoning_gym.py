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
import os
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from weakreward.rewards.base import RewardResult, Verdict, Verifier, reward_dataclass
from weakreward.rewards.extraction import answer_is, last_boxed
from weakreward.rewards.timeout_pool import Job, PoolOwner
from weakreward.rollouts import Prompt, Rollouts

__all__ = ["ReasoningGymVerifier"]

ENGINE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_reasoning_gym_worker.py")


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


@reward_dataclass
class ReasoningGymVerifier(PoolOwner, Verifier):
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

    A task's scorer runs arbitrary task code on model output, so it runs in ``workers`` processes of a
    `TimeoutPool` (started on first use, or by `start`): a scorer that takes longer than ``timeout``
    seconds on one answer is killed, and that answer scores 0 with reason ``timeout``. The verifier
    pickles without its processes; `close` stops them.

    Args:
        task_name: A registered reasoning-gym task (``"largest_island"``), or None for per-row tasks.
        metadata_column: The `Rollouts.extras` column with each problem's metadata, or None for tasks
            whose scorer needs only the answer.
        workers: Scorer processes (≥ 1).
        timeout: Seconds one answer's scoring may take, enforced from outside the worker.
        memory_limit_mb: Address-space cap of each worker (``RLIMIT_AS``); 0 for none.
        name: Name in composites and logs.

    Examples:
        >>> rg = ReasoningGymVerifier("largest_island")
        >>> rg.score([r"\\boxed{7}", r"\\boxed{5}"], references=["7", "7"], extra_info=['{"solution": 7}'] * 2).scores.tolist()
        [1.0, 0.0]
        >>> rg.close()
    """

    task_name: Annotated[str, Field(min_length=1)] | None = None
    metadata_column: Annotated[str, Field(min_length=1)] | None = "extra_info"
    workers: Annotated[int, Field(ge=1)] = 1
    timeout: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 10.0
    memory_limit_mb: Annotated[int, Field(ge=0)] = 0
    name: str = "reasoning_gym"
    engine_file: ClassVar[str] = ENGINE_FILE

    @model_validator(mode="after")
    def _a_task_source(self) -> ReasoningGymVerifier:
        if self.task_name is None and self.metadata_column is None:
            raise ValueError(
                "set task_name, or metadata_column so that each row's task is read from metadata['source_dataset']"
            )
        return self

    def __post_init__(self) -> None:
        rg = _reasoning_gym()
        if self.task_name is not None:
            try:
                rg.get_score_answer_fn(self.task_name)
            except ValueError as e:
                raise ValueError(f"ReasoningGymVerifier.task_name: reasoning-gym has no task {self.task_name!r}") from e
        self._init_transient()

    @property
    def needs(self) -> frozenset[str]:
        if self.metadata_column is None:
            return frozenset({"references"})
        return frozenset({"references", f"extras.{self.metadata_column}"})

    def extract(self, completion: str) -> str | None:
        for find in (last_boxed, _answer_tag, answer_is):
            answer = find(completion)
            if answer is not None:
                return answer
        return None

    def _score(self, jobs: list[Job]) -> list[tuple[float, str]]:
        """(score, reason) for each ``(task, (answer, entry))`` job, scored in the pool."""
        out = []
        for reason, value in self._pool.run(jobs, {}, chunk_size=64) if jobs else []:
            if reason != "scored":
                out.append((0.0, reason))
            elif not math.isfinite(value):
                out.append((0.0, "error: scorer returned a non-finite score"))
            else:
                value = min(1.0, max(0.0, value))
                out.append((value, "match" if value >= 1.0 else "partial" if value > 0.0 else "mismatch"))
        return out

    def compute(self, rollouts: Rollouts) -> RewardResult:
        n = len(rollouts)
        scores = np.zeros(n)
        answers = [self.extract(c) for c in rollouts.completions]
        reasons = ["no answer"] * n
        column = rollouts.extras[self.metadata_column] if self.metadata_column is not None else [None] * n
        jobs: list[Job] = []
        where = []
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
            if not isinstance(task, str) or not task:
                reasons[i] = "error: no task name (set task_name or metadata['source_dataset'])"
                continue
            entry = {"question": _question(rollouts.prompts[i]), "answer": str(gold), "metadata": metadata}
            jobs.append((task, (answer, entry)))
            where.append(i)
        for i, (score, reason) in zip(where, self._score(jobs)):
            scores[i], reasons[i] = score, reason
        return RewardResult(scores, {"answer": answers, "reason": reasons})

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Whether each ``answers[i]`` matches ``golds[i]``: equal up to whitespace, or (with ``task_name``
        set) given full credit by the task's scorer against an entry with empty metadata, in the pool.

        Args: as `Verifier.compare`.
        """
        same = ["".join(str(g).split()) == "".join(str(a).split()) for g, a in zip(golds, answers)]
        todo = [i for i, s in enumerate(same) if not s] if self.task_name is not None else []
        jobs: list[Job] = [
            (
                self.task_name,
                (str(answers[i]).strip(), {"question": "", "answer": str(golds[i]).strip(), "metadata": {}}),
            )
            for i in todo
        ]
        for i, (score, _) in zip(todo, self._score(jobs)):
            same[i] = score >= 1.0
        return [Verdict(s, "match" if s else "mismatch") for s in same]
