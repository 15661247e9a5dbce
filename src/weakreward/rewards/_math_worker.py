"""The worker process behind `weakreward.MathVerifier`.

Run as a standalone file (the parent starts ``python -c <boot> <this file> <fds>``): it imports only the
standard library and math-verify, never ``weakreward`` (whose import pulls in torch) nor the user's
``__main__`` (which ``multiprocessing``'s spawn and forkserver would re-run), so a worker starts in about
half a second. math-verify runs here with its own ``signal.alarm`` timeouts switched off: the parent
enforces the per-item timeout by killing this process, which also stops C-level sympy work.

Protocol (``multiprocessing.connection`` framing over two pipes):

- worker -> parent, once: ``("ready", pid)`` or ``("fail", traceback)``.
- parent -> worker: ``("job", golds, items, options)`` with ``items`` a list of
  ``(gold_index, text, kind)``; ``kind`` is ``"completion"`` (math-verify extracts the answer from the
  whole text) or ``"answer"`` (an already extracted answer, parsed as ``\\boxed{text}``).
- worker -> parent, one per item, in order: ``(reason, answer)`` with ``reason`` one of ``"match"``,
  ``"mismatch"``, ``"no answer"``, ``"error: ..."``.
- parent -> worker: ``("stop",)``, or the parent closes the pipe: the worker exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections import OrderedDict
from typing import Any

_CACHE_SIZE = 4096
_CACHE_MAX_TEXT = 2000


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


class _Engine:
    """math-verify with a bounded parse cache: references repeat across a call and across calls, and
    short answers and completions repeat within a group."""

    def __init__(self) -> None:
        import math_verify
        import math_verify.grader
        import math_verify.parser
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        # The parent enforces timeouts; silence math-verify's one-time "timeout disabled" warning.
        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
        self.parse = math_verify.parse
        self.verify = math_verify.verify
        self.gold_config = [LatexExtractionConfig()]
        self.pred_config = [LatexExtractionConfig(), ExprExtractionConfig()]
        self.cache: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        # math-verify compiles its large extraction regexes on first use (about a second): pay that
        # while starting, not inside the first item's deadline.
        self.run("1", "\\boxed{\\frac{1}{2}} so $x = 1$", "completion", {})
        self.run("1", "1", "answer", {})
        self.cache.clear()

    def _parse(self, text: str, config: list[Any]) -> list[Any]:
        return self.parse(text, extraction_config=config, parsing_timeout=None)

    def _cached(self, key: tuple[str, str], compute: Any) -> list[Any]:
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        value = compute()
        if len(key[1]) <= _CACHE_MAX_TEXT:
            self.cache[key] = value
            if len(self.cache) > _CACHE_SIZE:
                self.cache.popitem(last=False)
        return value

    def gold(self, gold: str) -> list[Any]:
        def compute() -> list[Any]:
            parsed = self._parse("\\boxed{" + gold + "}", self.gold_config)
            return parsed or self._parse(gold, self.pred_config)

        return self._cached(("gold", gold), compute)

    def answer(self, answer: str) -> list[Any]:
        def compute() -> list[Any]:
            parsed = self._parse("\\boxed{" + answer + "}", self.pred_config)
            return parsed or self._parse(answer, self.pred_config)

        return self._cached(("answer", answer), compute)

    def run(self, gold: str, text: str, kind: str, options: dict[str, Any]) -> tuple[str, str | None]:
        if kind == "answer":
            pred = self.answer(text)
            shown: str | None = text
        else:
            pred = self._cached(("completion", text), lambda: self._parse(text, self.pred_config))
            shown = None
            if pred:
                shown = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
        if not pred:
            return "no answer", shown
        golds = self.gold(gold)
        if not golds:
            return "error: reference could not be parsed", shown
        if self.verify(golds, pred, timeout_seconds=None, **options):
            return "match", shown
        # math-verify misses a few literal matches (text answers such as "\text{(C)}"): an answer
        # written exactly as the reference is correct.
        if shown is not None and "".join(shown.split()) == "".join(gold.split()):
            return "match", shown
        return "mismatch", shown


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    read_fd, write_fd, memory_mb = int(argv[0]), int(argv[1]), int(argv[2])
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    # Ctrl-C is the parent's to handle; a worker killed by it would look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(memory_mb)
    try:
        engine = _Engine()
    except BaseException:
        outbox.send(("fail", traceback.format_exc()))
        return
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message[0] != "job":
            return
        _, golds, items, options = message
        for gold_index, text, kind in items:
            try:
                result = engine.run(golds[gold_index], text, kind, options)
            except MemoryError:
                result = ("error: out of memory", None)
            except RecursionError:
                result = ("error: recursion too deep", None)
            except Exception as e:  # math-verify/sympy can raise anything on odd input
                result = (f"error: {type(e).__name__}", None)
            try:
                outbox.send(result)
            except (BrokenPipeError, OSError):
                return


if __name__ == "__main__":
    main(sys.argv[1:])
