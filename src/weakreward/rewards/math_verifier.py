"""`MathVerifier`: math-verify equivalence, hang-proof, in a small pool of worker processes.

math-verify (Kydlíček et al., HuggingFace) parses a completion's final answer into sympy and checks it
against the reference; it is the binary reward of arXiv 2604.18574 ("When Can LLMs Learn to Reason with
Weak Supervision?", §3: ``r = 1`` if the extracted answer is equivalent to the label, else ``0``). Its own
timeouts use ``signal.alarm``, which fails off the main thread and cannot interrupt sympy work stuck in
C (``9^{9^{9^{9^{9}}}}``). So every parse and comparison here runs in a worker process, and the calling
process enforces a hard per-item deadline: a worker that misses it is killed and replaced, and the item
scores 0 with reason ``"timeout"``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from weakreward.rewards.base import RewardResult, Verdict, Verifier, reward_dataclass
from weakreward.rewards.extraction import after_thinking, extract_answer
from weakreward.rewards.timeout_pool import Job, PoolOwner
from weakreward.rollouts import Rollouts

__all__ = ["MathVerifier"]

ENGINE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_math_worker.py")


@reward_dataclass
class MathVerifier(PoolOwner, Verifier):
    """Binary correctness by math-verify: 1 if the completion's final answer is mathematically equivalent
    to the reference, else 0 (arXiv 2604.18574's reward).

    The whole completion (its last ``max_chars`` characters) goes to math-verify's ``parse``, which
    finds the answer by itself: the last ``\\boxed{}`` first, then other LaTeX or plain expressions, so
    unboxed answers are still scored. The reference is parsed as ``\\boxed{reference}``, once per
    worker (a bounded cache), and compared gold-first with ``verify(gold, answer)``.

    Every parse and comparison runs in one of ``workers`` processes of a `TimeoutPool` (started on
    first use; ``start`` starts them now). A worker that spends more than ``timeout`` seconds on one
    item is killed and replaced; that item scores 0 with reason ``"timeout"``, the others are
    unaffected. Calls from many threads are safe (they take turns). The verifier pickles without its
    processes; a copy starts its own on first use. Workers stop with `close`, when the verifier is
    garbage-collected, or at exit.

    Hostile answers are screened before any symbolic work (``screen``), so that a policy that emits
    them does not pay a timeout and a worker restart for each: the text is split into tokens and a
    bracket tree, and it scores 0 with reason ``too_complex`` when brackets nest more than 32 deep,
    the final answer (the last ``\\boxed{}``, or the whole answer given to `compare`) has more than
    2000 tokens, or a power or factorial of literal numbers would have more than 10^6 digits (power
    towers such as ``9^{9^{9}}``, ``(10^{10})!``). The budget is far above any MATH-500 answer
    (nesting 2, 32 tokens); the hard timeout stays the last defence for what the screen misses.

    Scores and ``details["reason"]``: 1 ``match``; 0 ``mismatch``, ``no answer`` (nothing parsable),
    ``too_complex``, ``timeout``, ``error: ...`` (a parse error, ``error: out of memory`` past
    ``memory_limit_mb``, a reference math-verify cannot parse); NaN ``no reference``. ``details["answer"]``: the answer text
    math-verify extracted (``None`` when none).

    Args:
        workers: Worker processes (≥ 1).
        timeout: Seconds one item may take, enforced from outside the worker.
        max_chars: Longer completions are cut to their last ``max_chars`` characters before parsing
            (the final answer sits at the end; parse time grows with length).
        float_rounding: math-verify's ``float_rounding`` (decimal places kept when comparing floats).
        numeric_precision: math-verify's ``numeric_precision`` (significant digits for numeric checks).
        strict: math-verify's ``strict`` (False: variables match by value, and ``x = 1`` equals ``1``).
        memory_limit_mb: Address-space cap of each worker (``RLIMIT_AS``); 0 for none.
        chunk_size: Most items sent to a worker in one round trip.
        keep_thinking: False (default): only the text after the last ``</think>`` is read, so an answer
            drafted inside a thinking block never counts (the paper's thinking-format reward); True reads
            the whole completion.
        screen: Reject over-budget answers as ``too_complex`` before parsing (False: only the timeout).
        name: Name in composites and logs.

    Examples:
        >>> v = MathVerifier(workers=1)
        >>> r = v.score([r"so \\boxed{\\frac12}", "I think 0.5", r"\\boxed{2}", ""], references=["1/2"] * 4)
        >>> r.scores.tolist(), r.details["reason"]
        ([1.0, 1.0, 0.0, 0.0], ['match', 'match', 'mismatch', 'no answer'])
        >>> [v.match for v in v.compare([r"\\frac12", "0.5"], ["0.5", "1/2"])]
        [True, True]
        >>> v.close()
    """

    workers: Annotated[int, Field(ge=1)] = 2
    timeout: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 5.0
    max_chars: Annotated[int, Field(ge=1)] = 20_000
    float_rounding: Annotated[int, Field(ge=0)] = 6
    numeric_precision: Annotated[int, Field(ge=0)] = 15
    strict: bool = True
    memory_limit_mb: Annotated[int, Field(ge=0)] = 4096
    chunk_size: Annotated[int, Field(ge=1)] = 64
    screen: bool = True
    keep_thinking: bool = False
    name: str = "math_verify"
    engine_file: ClassVar[str] = ENGINE_FILE

    def __post_init__(self) -> None:
        self._init_transient()

    # -- verification ---------------------------------------------------------------------------
    @property
    def _options(self) -> dict[str, Any]:
        return {
            "float_rounding": self.float_rounding,
            "numeric_precision": self.numeric_precision,
            "strict": self.strict,
            "screen": self.screen,
        }

    def _tail(self, text: str) -> str:
        if not self.keep_thinking:
            text = after_thinking(text)
        return text if len(text) <= self.max_chars else text[-self.max_chars :]

    def extract(self, completion: str) -> str | None:
        """The final answer, found in this process without math-verify: the last ``\\boxed{}``, else
        "the answer is ..." (`weakreward.rewards.extraction.extract_answer`); ``None`` when there is
        none. Like `compute`, it reads only the last ``max_chars`` characters.

        `compute` lets math-verify extract instead (it also finds unmarked answers); this stricter
        extraction is for labelling and voting, paired with `compare`, so a majority vote counts only
        answers the completion marks as final.

        Example:
            >>> v = MathVerifier()
            >>> v.extract(r"first \\boxed{1}, then \\boxed{\\frac{2}{3}}"), v.extract("2 + 3 = 5")
            ('\\\\frac{2}{3}', None)
        """
        return extract_answer(self._tail(completion), keep_thinking=self.keep_thinking)

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Whether each ``answers[i]`` is equivalent to ``golds[i]`` (gold first), e.g. ``\\frac12``,
        ``0.5`` and ``1/2`` all match. Both sides are extracted answers, parsed as ``\\boxed{text}``.

        Args:
            golds: The trusted side of each pair.
            answers: Extracted answers, one per gold.

        Returns:
            One `Verdict` per pair; reasons as in the class docstring.
        """
        verdicts: list[Verdict | None] = [None] * len(golds)
        jobs: list[Job] = []
        where = []
        for i, (gold, answer) in enumerate(zip(golds, answers)):
            gold, answer = str(gold), str(answer)
            if not answer.strip():
                verdicts[i] = Verdict(False, "no answer")
            elif "".join(gold.split()) == "".join(answer.split()):
                verdicts[i] = Verdict(True, "match")
            else:
                jobs.append((gold, (self._tail(answer), "answer")))
                where.append(i)
        if jobs:
            for i, (reason, _) in zip(where, self._pool.run(jobs, self._options, self.chunk_size)):
                verdicts[i] = Verdict(reason == "match", reason)
        missing = [i for i, v in enumerate(verdicts) if v is None]
        if missing:  # a bug, never a bad answer: a silent filter would shift later verdicts onto other inputs
            raise RuntimeError(f"MathVerifier.compare: no verdict for pairs {missing[:10]}")
        return [v for v in verdicts if v is not None]  # all of them, checked above

    def compute(self, rollouts: Rollouts) -> RewardResult:
        n = len(rollouts)
        scores = np.zeros(n)
        answers: list[str | None] = [None] * n
        reasons = ["no answer"] * n
        jobs: list[Job] = []
        where = []
        for i, (completion, gold) in enumerate(zip(rollouts.completions, rollouts.references)):
            if gold is None:
                scores[i] = math.nan
                reasons[i] = "no reference"
            elif completion.strip():
                jobs.append((str(gold), (self._tail(completion), "completion")))
                where.append(i)
        if jobs:
            for i, (reason, answer) in zip(where, self._pool.run(jobs, self._options, self.chunk_size)):
                scores[i] = 1.0 if reason == "match" else 0.0
                reasons[i] = reason
                answers[i] = answer
        return RewardResult(scores, {"answer": answers, "reason": reasons})
