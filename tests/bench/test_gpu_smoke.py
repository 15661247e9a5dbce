"""``bench/gpu.sh --smoke`` runs on the CPU: the GPU benchmark follows the library's layout (the rollout
package, the static engine) and its correctness checks pass at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_benchmark_smoke_run_passes_on_the_cpu(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu-cpu-smoke.json").read_text())
    assert result["errors"] == {}, result["errors"]
    assert result["our_engine"] == "StaticEngine"
    assert result["engine_greedy_token_agreement"] == 1.0
    assert result["engine_prefill_logits_max_abs_err"] < 1e-4
    assert result["our_step_s"] > 0 and result["trl_step_s"] > 0
