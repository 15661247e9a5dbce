"""Switch Triton's CPU interpreter on for the kernel tests, if nothing has imported ``triton`` yet.

The interpreter has to be chosen before ``triton`` is first imported (its standard library is decorated
at import). This conftest is loaded before the modules of this folder are collected, which is usually
before anything imports Triton. The environment variable is set only around the import and then kept
as an in-process Triton knob, so subprocesses of other tests do not inherit it; CPU tests run no other
Triton code. When ``triton`` was already imported without it, the kernel test modules skip their
in-process cases and rerun themselves in a fresh process with ``TRITON_INTERPRET=1`` instead.
"""

import os
import subprocess
import sys

import pytest
import torch

if "triton" not in sys.modules and not torch.cuda.is_available():
    _previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton
    except ImportError:  # Triton is optional; the kernel tests then skip
        triton = None
    if triton is not None:
        # Triton's lazily imported parts (e.g. gluon) read the setting later: keep it as a knob.
        triton.knobs.runtime.interpret = True
    if _previous is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _previous


@pytest.fixture
def rerun_in_interpreter():
    """``run(test_file)``: run a kernel test module in a fresh process with ``TRITON_INTERPRET=1`` (its
    in-process cases skip when ``triton`` was imported without the interpreter) and assert it passed."""

    def run(test_file: str) -> None:
        env = dict(os.environ, TRITON_INTERPRET="1")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file, "-k", "not subprocess"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]

    return run
