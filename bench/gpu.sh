#!/usr/bin/env bash
# The CUDA-path benchmark in one command, on a lent GPU (see bench/README.md and docs/concepts/cuda-path.md).
#
#   bench/gpu.sh                 # full run: writes $OUT/gpu-<card>.json (or bench/results/ without $OUT)
#   bench/gpu.sh --smoke         # tiny sizes, any device: checks the script itself
#   bench/gpu.sh --sections stats,rollout
#
# weakreward runs from this tree (PYTHONPATH=src, no install). Packages the GPU image lacks (trl,
# datasets, dill, multiprocess, pydantic and its parts) are installed from wheels carried in .whl/
# when that folder exists; bench/README.md has the pip download command that fills it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/weakreward-site .whl/*.whl
    export PYTHONPATH="/tmp/weakreward-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
exec timeout 470 "$PY" bench/gpu_bench.py "$@"
