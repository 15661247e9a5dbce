"""Float32 linear layers on the CPU, forward + backward: `onednn_linear` (oneDNN) vs ``F.linear`` (MKL).

Two levels, each timed alternating the two paths in rounds (so a change in machine load hits both):

- **products**: one ``nn.Linear`` forward and backward (input and weight gradients) at the shapes of the
  training forward: the benchmark's tiny Llama (16 rows × 37 positions, hidden 256) and SmolLM2-135M at
  the demo's shape (24 rows × 72 positions; q/k/v, o, gate/up, down, the LM head);
- **models**: the forward and backward of a whole model: the tiny Llama, full fine-tuning, and
  SmolLM2-135M's architecture built from its config (random weights; hidden 576, 30 layers, vocab
  49,152), LoRA-free full fine-tuning over 24 × 72 tokens.

The JSON holds the best time of each path per case and the ratio ``torch / onednn`` (> 1: oneDNN faster).

Run: ``python bench/linear_cpu.py`` (writes bench/results/linear_cpu.json); ``--rounds`` for more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from weakreward.kernels.linear import onednn_linear, packed_linear_available

PRODUCTS = {
    # name: (rows, in, out)
    "tiny q/k/v (256→256)": (592, 256, 256),
    "tiny gate (256→512)": (592, 256, 512),
    "tiny down (512→256)": (592, 512, 256),
    "smollm2 q (576→576)": (1728, 576, 576),
    "smollm2 gate (576→1536)": (1728, 576, 1536),
    "smollm2 down (1536→576)": (1728, 1536, 576),
    "smollm2 lm head, 24×16 rows (576→49152)": (384, 576, 49152),
}


def smollm2_config():
    """SmolLM2-135M's architecture, the one `bench/gpu_bench.py` times (random weights)."""
    from gpu_bench import FULL  # bench/ is on sys.path when this script runs
    from transformers import LlamaConfig

    return LlamaConfig(**FULL["model"])


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_pair(step, rounds: int, repeats: int) -> dict:
    """Best seconds of ``step(routed)`` for routed False (``F.linear``) and True (oneDNN), alternating."""
    step(False), step(True)  # warm-up: allocator, oneDNN primitive cache
    best = {"torch": float("inf"), "onednn": float("inf")}
    for _ in range(rounds):
        for name, routed in (("torch", False), ("onednn", True)):
            best[name] = min(best[name], _best(lambda routed=routed: step(routed), repeats))
    return {"torch_s": best["torch"], "onednn_s": best["onednn"], "speedup": best["torch"] / best["onednn"]}


def product_case(rows: int, n_in: int, n_out: int):
    layer = torch.nn.Linear(n_in, n_out, bias=False)
    x = torch.randn(rows, n_in, requires_grad=True)
    grad = torch.randn(rows, n_out)

    def step(routed: bool) -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        with onednn_linear(routed):
            y = layer(x)
        y.backward(grad)

    return step


def model_case(model: torch.nn.Module, batch: int, length: int, vocab: int):
    ids = torch.randint(4, vocab, (batch, length), generator=torch.Generator().manual_seed(0))

    def step(routed: bool) -> None:
        model.zero_grad(set_to_none=True)
        with onednn_linear(routed):
            logits = model(input_ids=ids, logits_to_keep=length - 1).logits
        logits.logsumexp(-1).mean().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "linear_cpu.json"))
    args = parser.parse_args()
    if not packed_linear_available():
        raise SystemExit("this torch build has no oneDNN linear: nothing to compare")
    torch.manual_seed(0)
    load_before = os.getloadavg()
    result: dict = {
        "benchmark": "float32 linear forward + backward on the CPU: weakreward onednn_linear vs F.linear (MKL)",
        "setup": {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "rounds": args.rounds,
            "load_avg_before": load_before,
        },
        "products": {},
        "models": {},
    }
    for name, (rows, n_in, n_out) in PRODUCTS.items():
        repeats = 3 if n_out > 10_000 else 10
        r = time_pair(product_case(rows, n_in, n_out), args.rounds, repeats)
        r["gflops_torch"] = 6 * rows * n_in * n_out / r["torch_s"] / 1e9  # forward + two backward products
        r["gflops_onednn"] = 6 * rows * n_in * n_out / r["onednn_s"] / 1e9
        result["products"][name] = r
        print(name, {k: round(v, 4) for k, v in r.items()}, flush=True)

    from transformers import AutoModelForCausalLM

    from weakreward.models import char_tokenizer, tiny_llama

    tok = char_tokenizer()
    tiny = tiny_llama(tok, hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2)
    result["models"]["tiny llama (hidden 256, 4 layers), 16 × 37 tokens"] = time_pair(
        model_case(tiny, 16, 37, len(tok)), args.rounds, 5
    )
    smol = AutoModelForCausalLM.from_config(smollm2_config())
    result["models"]["SmolLM2-135M architecture (random weights), 24 × 72 tokens"] = time_pair(
        model_case(smol, 24, 72, 49152), args.rounds, 2
    )
    for name, r in result["models"].items():
        print(name, {k: round(v, 4) for k, v in r.items()}, flush=True)
    result["setup"]["load_avg_after"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
