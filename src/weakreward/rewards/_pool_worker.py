"""The worker loop behind `weakreward.rewards.timeout_pool.TimeoutPool`.

Run as a standalone file (the parent starts ``python -c <boot> <this file> <engine file> <fds> <MB>``):
it imports only the standard library, then the engine file, never ``weakreward`` (whose import pulls in
torch) nor the user's ``__main__`` (which ``multiprocessing``'s spawn and forkserver would re-run), so a
worker starts in about half a second. The protocol is in ``timeout_pool``'s module docstring.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import traceback
from typing import Any


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


def _load_engine(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("_weakreward_engine", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the engine file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Engine()


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    engine_file, read_fd, write_fd, memory_mb = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    # Ctrl-C is the parent's to handle; a worker killed by it would look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(memory_mb)
    try:
        engine = _load_engine(engine_file)
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
        _, contexts, items, options = message
        for context_index, payload in items:
            try:
                result = engine.run(contexts[context_index], payload, options)
            except MemoryError:
                result = ("error: out of memory", None)
            except RecursionError:
                result = ("error: recursion too deep", None)
            except Exception as e:  # a scorer can raise anything on odd input
                result = (f"error: {type(e).__name__}", None)
            try:
                outbox.send(result)
            except (BrokenPipeError, OSError):
                return


if __name__ == "__main__":
    main(sys.argv[1:])
