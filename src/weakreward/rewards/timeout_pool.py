"""`TimeoutPool`: worker processes that run untrusted work with a hard deadline per item.

Scorers that parse model output (math-verify's sympy, a reasoning-gym task's ``score_answer``) can spend
unbounded time in C code, where no signal or thread can stop them. The pool runs each item in a worker
process and enforces the deadline from the calling process: a worker that misses it is killed and
replaced, the item gets the reason ``"timeout"`` and the rest of the batch goes on.

A worker is a standalone *engine file* (standard library plus the scorer's own package, never
``weakreward``, whose import pulls in torch) that defines ``Engine``: ``Engine()`` loads the scorer and
``Engine().run(context, payload, options) -> (reason, value)`` scores one item. The generic loop in
``_pool_worker.py`` loads the engine file and serves the protocol below.

Protocol (``multiprocessing.connection`` framing over two pipes):

- worker -> parent, once: ``("ready", pid)`` or ``("fail", traceback)``.
- parent -> worker: ``("job", contexts, items, options)``; ``items`` is a list of ``(context_index,
  payload)``: items that share a context (a reference answer) travel with it once.
- worker -> parent, one per item, in order: ``(reason, value)``.
- parent -> worker: ``("stop",)``, or the parent closes the pipe: the worker exits.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, ClassVar

from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = ["PoolOwner", "TimeoutPool"]

_LOOP_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_pool_worker.py")
# Started with -c rather than as a script or module: no package __init__ (torch) to import, and
# neither the worker's folder nor the working directory on sys.path to shadow installed packages.
_BOOT = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "import importlib.util as u\n"
    "s = u.spec_from_file_location('_weakreward_pool_worker', sys.argv[1])\n"
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.main(sys.argv[2:])\n"
)
_STARTUP_TIMEOUT = 120.0

# A job: (context, payload). A result: (reason, value).
Job = tuple[Hashable, Any]
Result = tuple[str, Any]


class _Worker:
    """One worker process and its two pipe ends."""

    def __init__(self, engine_file: str, memory_mb: int) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        argv = [_LOOP_FILE, engine_file, str(to_child_r), str(from_child_w), str(memory_mb)]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, *argv],
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
    contexts: list[Any]
    items: list[tuple[int, Any]]  # (context index, payload)
    where: list[int]  # the global index of each item


@dataclass
class _Busy:
    chunk: _Chunk
    position: int  # of the running item in the chunk
    deadline: float


class TimeoutPool:
    """Worker processes running one engine file, started lazily, with a hard deadline per item.

    All use goes through one lock, so calls from many threads take turns. The pool survives a fork
    (the child starts its own workers) and an interrupted call (busy workers are dropped, so no stale
    result reaches the next call).

    Args:
        engine_file: Path of the standalone file that defines ``Engine`` (see the module docstring).
        workers: Most worker processes (≥ 1).
        timeout: Seconds one item may take, enforced by killing the worker.
        memory_mb: Address-space cap of each worker (``RLIMIT_AS``); 0 for none.
        label: Who owns the pool, for error messages (``"MathVerifier"``).

    Examples:
        >>> from weakreward.rewards import math_verifier
        >>> pool = TimeoutPool(math_verifier.ENGINE_FILE, workers=1, timeout=5.0, memory_mb=0, label="demo")
        >>> pool.run([("4", (r"so \\boxed{4}", "completion")), ("2", ("3", "answer"))], {}, chunk_size=8)
        [('match', '4'), ('mismatch', '3')]
        >>> pool.close()
    """

    def __init__(self, engine_file: str, *, workers: int, timeout: float, memory_mb: int, label: str) -> None:
        self.engine_file = engine_file
        self.size = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.label = label
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.pid = os.getpid()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every worker; the next call starts new ones."""
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
            self.workers.append(_Worker(self.engine_file, self.memory_mb))

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self.workers:
            self.workers.remove(worker)

    def start(self) -> None:
        """Start all workers now and wait until they are ready."""
        with self.lock:
            self._fill(self.size)
            self._run_chunks(deque(), [], None, until_ready=True)

    # -- work -----------------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job], options: dict[str, Any], chunk_size: int) -> list[Result]:
        """One ``(reason, value)`` per job, in order. Identical jobs (a group's repeated short answers)
        run once. An item past the deadline gets ``("timeout", None)``; one whose worker died,
        ``("error: worker died", None)``.

        Args:
            jobs: ``(context, payload)`` pairs; jobs that share a context go to a worker together.
            options: Passed to every ``Engine.run`` call.
            chunk_size: Most items sent to a worker in one round trip.
        """
        try:
            unique: dict[Job, int] = {}
            slot = [unique.setdefault(job, len(unique)) for job in jobs]
            distinct = list(unique)
        except TypeError:  # an unhashable payload: no deduplication
            distinct, slot = list(jobs), list(range(len(jobs)))
        results: list[Result | None] = [None] * len(distinct)
        chunks = _make_chunks(distinct, self.size, chunk_size)
        with self.lock:
            self._fill(min(self.size, len(chunks)))
            self._run_chunks(deque(chunks), results, options)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise RuntimeError(f"{self.label}: the pool returned no result for items {missing[:10]}")
        done = [r for r in results if r is not None]  # all of them, checked above
        return [done[k] for k in slot]

    def _run_chunks(
        self, queue: deque[_Chunk], results: list[Any], options: dict[str, Any] | None, until_ready: bool = False
    ) -> None:
        """Feed ``queue`` to the workers until every item has a result (``until_ready``: until every
        worker has started)."""
        busy: dict[_Worker, _Busy] = {}
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
        busy: dict[_Worker, _Busy],
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
                    busy[w] = _Busy(chunk, 0, math.inf)
                    try:
                        w.outbox.send(("job", chunk.contexts, chunk.items, options))
                    except OSError:
                        del busy[w]
                        queue.appendleft(chunk)
                        self._drop(w)
                        self._fill(wanted)
                        break
                    busy[w].deadline = time.monotonic() + self.timeout
            now = time.monotonic()
            deadlines = [state.deadline for state in busy.values()]
            deadlines += [w.started + _STARTUP_TIMEOUT for w in self.workers if not w.ready]
            ready = wait([w.inbox for w in self.workers], timeout=max(0.0, min(deadlines) - now) if deadlines else None)
            by_conn = {id(w.inbox): w for w in self.workers}
            for conn in ready:
                w = by_conn[id(conn)]
                try:
                    message = w.inbox.recv()
                except (EOFError, OSError):
                    self._worker_died(w, busy, queue, results, "error: worker died")
                    self._fill(wanted)
                    continue
                if not w.ready:
                    if message[0] == "fail":
                        self._drop(w)
                        raise RuntimeError(f"{self.label}: a worker could not start:\n{message[1]}")
                    w.ready = True
                    continue
                state = busy[w]
                results[state.chunk.where[state.position]] = tuple(message)
                state.position += 1
                if state.position == len(state.chunk.items):
                    del busy[w]
                else:
                    state.deadline = time.monotonic() + self.timeout
            now = time.monotonic()
            for w in [w for w, state in busy.items() if now >= state.deadline]:
                self._worker_died(w, busy, queue, results, "timeout")
                self._fill(wanted)
            for w in [w for w in self.workers if not w.ready and now >= w.started + _STARTUP_TIMEOUT]:
                self._drop(w)
                raise RuntimeError(f"{self.label}: a worker did not start within {_STARTUP_TIMEOUT:.0f} s")

    def _worker_died(
        self, w: _Worker, busy: dict[_Worker, _Busy], queue: deque[_Chunk], results: list[Any], reason: str
    ) -> None:
        """The item ``w`` was working on gets ``reason``; the rest of its chunk goes back on the queue."""
        if not w.ready:
            self._drop(w)
            raise RuntimeError(f"{self.label}: a worker exited while starting (is its scorer package installed?)")
        state = busy.pop(w, None)
        self._drop(w)
        if state is None:
            return
        chunk, pos = state.chunk, state.position
        results[chunk.where[pos]] = (reason, None)
        if pos + 1 < len(chunk.items):
            queue.appendleft(_Chunk(chunk.contexts, chunk.items[pos + 1 :], chunk.where[pos + 1 :]))


def _make_chunks(jobs: Sequence[Job], workers: int, chunk_size: int) -> list[_Chunk]:
    """Group jobs by context (a worker can cache what it derives from one, e.g. a parsed reference),
    then pack whole groups into chunks of about ``min(chunk_size, n / (2 · workers))`` items: few round
    trips, yet enough chunks to keep every worker busy to the end."""
    by_context: dict[Any, list[int]] = {}
    order: list[Any] = []
    for i, (context, _) in enumerate(jobs):
        key = _key(context)
        if key not in by_context:
            by_context[key] = []
            order.append(context)
        by_context[key].append(i)
    target = max(1, min(chunk_size, math.ceil(len(jobs) / (2 * workers))))
    chunks: list[_Chunk] = []
    current = _Chunk([], [], [])
    for context in order:
        indices = by_context[_key(context)]
        for start in range(0, len(indices), chunk_size):
            part = indices[start : start + chunk_size]
            if current.items and len(current.items) + len(part) > chunk_size:
                chunks.append(current)
                current = _Chunk([], [], [])
            current.contexts.append(context)
            c = len(current.contexts) - 1
            current.items.extend((c, jobs[i][1]) for i in part)
            current.where.extend(part)
            if len(current.items) >= target:
                chunks.append(current)
                current = _Chunk([], [], [])
    if current.items:
        chunks.append(current)
    return chunks


def _key(context: Any) -> Any:
    """A dict key for a context (unhashable contexts group by their repr)."""
    try:
        hash(context)
    except TypeError:
        return ("repr", repr(context))
    return context


class PoolOwner:
    """Mixin for a frozen-dataclass verifier that scores in a `TimeoutPool` (``self._pool``).

    The pool is a plain attribute, not a field: `dataclasses.replace` and `dataclasses.asdict` see only
    the configuration, pickling keeps only the fields (a copy starts its own workers on first use), and
    the workers stop with `close`, when the owner is garbage-collected, or at exit. The owner has the
    fields ``workers``, ``timeout`` and ``memory_limit_mb`` and names its worker's script in `engine_file`.
    """

    _pool: TimeoutPool
    workers: int
    timeout: float
    memory_limit_mb: int
    engine_file: ClassVar[str]  # the worker script each subclass runs in the pool

    def _init_transient(self) -> None:
        pool = TimeoutPool(
            self.engine_file,
            workers=self.workers,
            timeout=float(self.timeout),
            memory_mb=self.memory_limit_mb,
            label=type(self).__name__,
        )
        object.__setattr__(self, "_pool", pool)
        # Stops the workers when the owner is collected or the interpreter exits.
        weakref.finalize(self, pool.close)

    def __getstate__(self) -> dict[str, Any]:
        owner: Any = self  # a dataclass instance (the subclass is one)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(owner)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self._init_transient()

    def start(self) -> Self:
        """Start all workers now and wait until they are ready (else they start on first use)."""
        self._pool.start()
        return self

    def close(self) -> None:
        """Stop the workers; the next call starts new ones."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
