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
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from weakreward.rewards.base import RewardResult, Verdict, Verifier
from weakreward.rewards.extraction import after_thinking, extract_answer
from weakreward.rollouts import Rollouts

__all__ = ["MathVerifier"]

_WORKER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_math_worker.py")
# Started with -c rather than as a script or module: no package __init__ (torch) to import, and
# neither the worker's folder nor the working directory on sys.path to shadow installed packages.
_BOOT = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "import importlib.util as u\n"
    "s = u.spec_from_file_location('_weakreward_math_worker', sys.argv[1])\n"
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.main(sys.argv[2:])\n"
)
_STARTUP_TIMEOUT = 120.0

# A job: (gold, text, kind). A result: (reason, answer).
_Job = tuple[str, str, str]
_Result = tuple[str, "str | None"]


class _Worker:
    """One worker process and its two pipe ends."""

    def __init__(self, memory_mb: int) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, _WORKER_FILE, str(to_child_r), str(from_child_w), str(memory_mb)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        self.inbox = Connection(from_child_r, writable=False)
        self.outbox = Connection(to_child_w, readable=False)
        self.ready = False
        self.started = time.monotonic()

    def kill(self) -> None:
        for conn in (self.inbox, self.outbox):
            try:
                conn.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@dataclass
class _Chunk:
    golds: list[str]
    items: list[tuple[int, str, str]]  # (gold index, text, kind)
    where: list[int]  # the global index of each item


class _Pool:
    """Worker processes, started lazily; all use goes through ``lock`` (one call at a time)."""

    def __init__(self, workers: int, timeout: float, memory_mb: int) -> None:
        self.size = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.pid = os.getpid()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        with self.lock:
            self._close()

    def _close(self) -> None:
        if os.getpid() != self.pid:
            # A forked child holds copies of the parent's pipes: drop them, the processes are the parent's.
            self.workers = []
            return
        for w in self.workers:
            try:
                w.outbox.send(("stop",))
            except OSError:
                pass
            w.kill()
        self.workers = []

    def _fill(self, wanted: int) -> None:
        """Start workers until ``wanted`` are alive or starting."""
        if os.getpid() != self.pid:
            self.workers = []
            self.pid = os.getpid()
        for w in [w for w in self.workers if w.ready and w.process.poll() is not None]:
            self._drop(w)
        while len(self.workers) < wanted:
            self.workers.append(_Worker(self.memory_mb))

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self.workers:
            self.workers.remove(worker)

    def start(self) -> None:
        with self.lock:
            self._fill(self.size)
            self._run_chunks(deque(), [], None, until_ready=True)

    # -- work -----------------------------------------------------------------------------------
    def run(self, jobs: Sequence[_Job], options: dict[str, Any], chunk_size: int) -> list[_Result]:
        """One result per job; identical jobs (a group's repeated short answers) run once."""
        unique: dict[_Job, int] = {}
        slot = [unique.setdefault(job, len(unique)) for job in jobs]
        distinct = list(unique)
        results: list[_Result | None] = [None] * len(distinct)
        chunks = _make_chunks(distinct, self.size, chunk_size)
        with self.lock:
            self._fill(min(self.size, len(chunks)))
            self._run_chunks(deque(chunks), results, options)
        done = [r if r is not None else ("error: not run", None) for r in results]
        return [done[k] for k in slot]

    def _run_chunks(
        self, queue: deque[_Chunk], results: list[Any], options: dict[str, Any] | None, until_ready: bool = False
    ) -> None:
        """Feed ``queue`` to the workers until every item has a result (``until_ready``: until every
        worker has started)."""
        busy: dict[_Worker, list[Any]] = {}  # worker -> [chunk, position of the running item, its deadline]
        try:
            self._loop(queue, results, options, until_ready, busy)
        except BaseException:
            # Interrupted (Ctrl-C, a worker that cannot start): a busy worker would send its remaining
            # results to the next call, so it goes.
            for w in list(busy):
                self._drop(w)
            raise

    def _loop(
        self,
        queue: deque[_Chunk],
        results: list[Any],
        options: dict[str, Any] | None,
        until_ready: bool,
        busy: dict[_Worker, list[Any]],
    ) -> None:
        wanted = max(1, len(self.workers))
        while queue or busy or (until_ready and any(not w.ready for w in self.workers)):
            if len(self.workers) < wanted:
                self._fill(wanted)
            for w in self.workers:
                if queue and w.ready and w not in busy:
                    chunk = queue.popleft()
                    # Busy before the send: a send cut short leaves a half-written message, and the
                    # cleanup in `_run_chunks` then drops this worker.
                    busy[w] = [chunk, 0, math.inf]
                    try:
                        w.outbox.send(("job", chunk.golds, chunk.items, options))
                    except OSError:
                        del busy[w]
                        queue.appendleft(chunk)
                        self._drop(w)
                        self._fill(wanted)
                        break
                    busy[w][2] = time.monotonic() + self.timeout
            now = time.monotonic()
            deadlines = [state[2] for state in busy.values()]
            deadlines += [w.started + _STARTUP_TIMEOUT for w in self.workers if not w.ready]
            ready = wait([w.inbox for w in self.workers], timeout=max(0.0, min(deadlines) - now) if deadlines else None)
            by_conn = {id(w.inbox): w for w in self.workers}
            for conn in ready:
                w = by_conn[id(conn)]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._worker_died(w, busy, queue, results, "error: worker died")
                    self._fill(wanted)
                    continue
                if not w.ready:
                    if message[0] == "fail":
                        self._drop(w)
                        raise RuntimeError(f"MathVerifier: a worker could not start math-verify:\n{message[1]}")
                    w.ready = True
                    continue
                chunk, pos, _ = busy[w]
                results[chunk.where[pos]] = message
                pos += 1
                if pos == len(chunk.items):
                    del busy[w]
                else:
                    busy[w] = [chunk, pos, time.monotonic() + self.timeout]
            now = time.monotonic()
            for w in [w for w, state in busy.items() if now >= state[2]]:
                self._worker_died(w, busy, queue, results, "timeout")
                self._fill(wanted)
            for w in [w for w in self.workers if not w.ready and now >= w.started + _STARTUP_TIMEOUT]:
                self._drop(w)
                raise RuntimeError(f"MathVerifier: a worker did not start within {_STARTUP_TIMEOUT:.0f} s")

    def _worker_died(
        self, w: _Worker, busy: dict[_Worker, list[Any]], queue: deque[_Chunk], results: list[Any], reason: str
    ) -> None:
        """The item ``w`` was working on gets ``reason``; the rest of its chunk goes back on the queue."""
        if not w.ready:
            self._drop(w)
            raise RuntimeError("MathVerifier: a worker exited while starting (is math-verify installed?)")
        state = busy.pop(w, None)
        self._drop(w)
        if state is None:
            return
        chunk, pos, _ = state
        results[chunk.where[pos]] = (reason, None)
        if pos + 1 < len(chunk.items):
            queue.appendleft(_Chunk(chunk.golds, chunk.items[pos + 1 :], chunk.where[pos + 1 :]))


def _make_chunks(jobs: Sequence[_Job], workers: int, chunk_size: int) -> list[_Chunk]:
    """Group jobs by reference (each worker parses a reference once and caches it), then pack whole
    groups into chunks of about ``min(chunk_size, n / (2 · workers))`` items: few round trips, yet
    enough chunks to keep every worker busy to the end."""
    by_gold: dict[str, list[int]] = {}
    for i, (gold, _, _) in enumerate(jobs):
        by_gold.setdefault(gold, []).append(i)
    target = max(1, min(chunk_size, math.ceil(len(jobs) / (2 * workers))))
    chunks: list[_Chunk] = []
    current = _Chunk([], [], [])
    for gold, indices in by_gold.items():
        for start in range(0, len(indices), chunk_size):
            part = indices[start : start + chunk_size]
            if current.items and len(current.items) + len(part) > chunk_size:
                chunks.append(current)
                current = _Chunk([], [], [])
            current.golds.append(gold)
            g = len(current.golds) - 1
            current.items.extend((g, jobs[i][1], jobs[i][2]) for i in part)
            current.where.extend(part)
            if len(current.items) >= target:
                chunks.append(current)
                current = _Chunk([], [], [])
    if current.items:
        chunks.append(current)
    return chunks


@dataclass(frozen=True, eq=False)
class MathVerifier(Verifier):
    """Binary correctness by math-verify: 1 if the completion's final answer is mathematically equivalent
    to the reference, else 0 (arXiv 2604.18574's reward).

    The whole completion (its last ``max_chars`` characters) goes to math-verify's ``parse``, which
    finds the answer by itself: the last ``\\boxed{}`` first, then other LaTeX or plain expressions, so
    unboxed answers are still scored. The reference is parsed as ``\\boxed{reference}``, once per
    worker (a bounded cache), and compared gold-first with ``verify(gold, answer)``.

    Every parse and comparison runs in one of ``workers`` processes (started on first use; ``start``
    starts them now). A worker that spends more than ``timeout`` seconds on one item is killed and
    replaced; that item scores 0 with reason ``"timeout"``, the others are unaffected. Calls from many
    threads are safe (they take turns). The verifier pickles without its processes; a copy starts its
    own on first use. Workers stop with `close`, when the verifier is garbage-collected, or at exit.

    Scores and ``details["reason"]``: 1 ``match``; 0 ``mismatch``, ``no answer`` (nothing parsable),
    ``timeout``, ``error: ...`` (a parse error, ``error: out of memory`` past ``memory_limit_mb``, a
    reference math-verify cannot parse); NaN ``no reference``. ``details["answer"]``: the answer text
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

    workers: int = 2
    timeout: float = 5.0
    max_chars: int = 20_000
    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    memory_limit_mb: int = 4096
    chunk_size: int = 64
    keep_thinking: bool = False
    name: str = "math_verify"
    # The worker pool is a plain attribute (``_pool``), not a field: `dataclasses.replace` and
    # `dataclasses.asdict` see only the configuration, and pickling leaves it out (`__getstate__`).

    def __post_init__(self) -> None:
        for fname in ("workers", "max_chars", "chunk_size"):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MathVerifier.{fname} must be an integer ≥ 1, got {value!r}")
        for fname in ("float_rounding", "numeric_precision", "memory_limit_mb"):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"MathVerifier.{fname} must be an integer ≥ 0, got {value!r}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not self.timeout > 0:
            raise ValueError(f"MathVerifier.timeout must be a positive number of seconds, got {self.timeout!r}")
        if not math.isfinite(self.timeout):
            raise ValueError(f"MathVerifier.timeout must be finite, got {self.timeout!r}")
        self._new_pool()

    def _new_pool(self) -> None:
        pool = _Pool(self.workers, float(self.timeout), self.memory_limit_mb)
        object.__setattr__(self, "_pool", pool)
        # Stops the workers when the verifier is collected or the interpreter exits.
        weakref.finalize(self, pool.close)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_pool", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self._new_pool()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> MathVerifier:
        """Start all workers now and wait until they are ready (else they start on first use)."""
        self._pool.start()
        return self

    def close(self) -> None:
        """Stop the workers; the next call starts new ones."""
        self._pool.close()

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- verification ---------------------------------------------------------------------------
    @property
    def _options(self) -> dict[str, Any]:
        return {
            "float_rounding": self.float_rounding,
            "numeric_precision": self.numeric_precision,
            "strict": self.strict,
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

        Returns:
            One `Verdict` per pair; reasons as in the class docstring.
        """
        if len(golds) != len(answers):
            raise ValueError(f"MathVerifier.compare: {len(golds)} golds but {len(answers)} answers")
        verdicts: list[Verdict | None] = [None] * len(golds)
        jobs: list[_Job] = []
        where = []
        for i, (gold, answer) in enumerate(zip(golds, answers)):
            gold, answer = str(gold), str(answer)
            if not answer.strip():
                verdicts[i] = Verdict(False, "no answer")
            elif "".join(gold.split()) == "".join(answer.split()):
                verdicts[i] = Verdict(True, "match")
            else:
                jobs.append((gold, self._tail(answer), "answer"))
                where.append(i)
        if jobs:
            for i, (reason, _) in zip(where, self._pool.run(jobs, self._options, self.chunk_size)):
                verdicts[i] = Verdict(reason == "match", reason)
        return [v for v in verdicts if v is not None]

    def compute(self, rollouts: Rollouts) -> RewardResult:
        n = len(rollouts)
        scores = np.zeros(n)
        answers: list[str | None] = [None] * n
        reasons = ["no answer"] * n
        jobs: list[_Job] = []
        where = []
        for i, (completion, gold) in enumerate(zip(rollouts.completions, rollouts.references)):
            if gold is None:
                scores[i] = math.nan
                reasons[i] = "no reference"
            elif completion.strip():
                jobs.append((str(gold), self._tail(completion), "completion"))
                where.append(i)
        if jobs:
            for i, (reason, answer) in zip(where, self._pool.run(jobs, self._options, self.chunk_size)):
                scores[i] = 1.0 if reason == "match" else 0.0
                reasons[i] = reason
                answers[i] = answer
        return RewardResult(scores, {"answer": answers, "reason": reasons})
