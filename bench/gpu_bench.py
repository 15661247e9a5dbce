"""The CUDA path against its peers, side by side in one run: correctness first, then timings.

Workload (issue 6): the SmolLM2-135M architecture from a config (hidden 576, 30 layers, 9 heads, 3 kv
heads, intermediate 1536, vocab 49152, tied embeddings, rope theta 100000), random init, bf16;
8 prompts × 8 samples × 256 forced completion tokens (EOS ignored); full fine-tuning.

Sections (each in its own try/except, so one failure still leaves the others' numbers):

1. correctness: fused token statistics vs the plain-torch reference (outputs and gradients); the
   rollout engine's greedy tokens and prefill logits vs Hugging Face's.
2. stats: naive float32 log-softmax vs the fused kernel over 64 × 320 × 49152 bf16 logits
   (milliseconds and extra GiB beyond the logits), forward and forward+backward; and the LM head
   followed by the kernel vs `fused_linear_token_stats` (head fused, logits never whole).
3. rollout: HF ``generate`` vs `StaticEngine` (tokens/s; engine warm-up = setup + graph capture).
4. trl / ours: TRL 1.16's GRPO step vs weakreward's `GRPOTrainer(engine="static")`, seconds and
   peak GiB, with a breakdown of ours into rollout / stats / backward / optimizer / other.
5. ours_microbatch: the same step with ``micro_batch_size=16`` (peak memory vs time).
6. rollout_compiled: the engine with its decode step compiled by Inductor (last: compile time is the
   least predictable part).

Run on a lent GPU with ``bench/gpu.sh`` (see bench/README.md); ``--smoke`` runs tiny sizes on the CPU
to check the script itself. Writes ``<out-dir>/gpu-<card>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

SMOKE = "--smoke" in sys.argv
if SMOKE and not torch.cuda.is_available():
    # The fused kernel runs on CPU tensors only under Triton's interpreter, chosen before import.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402

FULL = {
    "model": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
        rope_theta=100000.0,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
    ),
    "prompts": 8,
    "group": 8,
    "new_tokens": 256,
    "stats_shape": (64, 320, 49152),
    "check_shape": (4, 64, 49152),
    "greedy_tokens": 32,
    "steps": 3,  # warm-up, timed, instrumented (breakdown)
    "trl_steps": 2,  # warm-up, timed
}
SMOKE_SIZES = {
    "model": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        tie_word_embeddings=True,
        rope_theta=100000.0,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
    ),
    "prompts": 2,
    "group": 2,
    "new_tokens": 8,
    "stats_shape": (2, 12, 512),
    "check_shape": (2, 5, 512),
    "greedy_tokens": 8,
    "steps": 3,
    "trl_steps": 2,
}
PROMPTS = [
    "Compute 17 * 23 and explain each step of the multiplication.",
    "What is the sum of the first ten prime numbers? Show your reasoning.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
    "Solve for x: 3x + 7 = 22. Write the answer in a box.",
    "How many ways can 5 books be arranged on a shelf?",
    "Simplify the fraction 84/126 and give the result.",
    "If a square has a diagonal of 10, what is its area?",
    "What is the remainder when 2^20 is divided by 7?",
]


# -- helpers ----------------------------------------------------------------------------------------


def bench_tokenizer(vocab_size: int) -> Any:
    """A local tokenizer with exactly ``vocab_size`` ids: characters (so prompts encode), ChatML specials,
    and filler tokens ``<tN>`` (so every sampled id decodes). No download."""
    import string

    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    base = specials + chars
    vocab = {tok: i for i, tok in enumerate(base + [f"<t{i}>" for i in range(vocab_size - len(base))])}
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    tok.padding_side = "left"
    return tok


def build_model(sizes: dict, tok: Any, device: torch.device, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        **sizes["model"], pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # sync: timing boundary


def timed(fn, device: torch.device, iters: int, warmup: int = 2) -> float:
    """Median wall milliseconds of ``fn`` over ``iters`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def peak_extra_gib(fn, device: torch.device) -> float:
    """Peak GiB allocated by ``fn`` beyond what was allocated before it (CUDA only; None on the CPU)."""
    if device.type != "cuda":
        fn()
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = fn()
    sync(device)
    extra = (torch.cuda.max_memory_allocated(device) - before) / 2**30
    del out
    return extra


def prompts_for(sizes: dict) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(sizes["prompts"])]


def encode(tok: Any, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tok(prompts, return_tensors="pt", padding=True)
    return enc["input_ids"].to(device), enc["attention_mask"].to(device).bool()


# -- sections ---------------------------------------------------------------------------------------


def naive_stats(logits: torch.Tensor, ids: torch.Tensor, temperature: float = 1.0):
    """The usual float32 log-softmax recipe (what the fused kernel replaces)."""
    z = logits.float() / temperature
    logp_all = torch.log_softmax(z, dim=-1)
    logp = logp_all.gather(-1, ids[..., None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    lse = torch.logsumexp(z, dim=-1)
    certainty = lse - z.mean(-1) - math.log(z.shape[-1])
    return logp, entropy, certainty


def section_correctness(sizes: dict, device: torch.device, tok: Any, model: torch.nn.Module) -> dict:
    from weakreward.kernels.fused_stats import fused_token_stats
    from weakreward.kernels.token_stats import reference_token_stats
    from weakreward.rollout.static import StaticEngine
    from weakreward.rollout.static_decoder import StaticDecoder

    out: dict[str, Any] = {}
    b, t, v = sizes["check_shape"]
    g = torch.Generator(device="cpu").manual_seed(0)
    logits = (torch.randn(b, t, v, generator=g) * 3).to(device=device, dtype=torch.bfloat16)
    ids = torch.randint(0, v, (b, t), generator=g).to(device)
    mask = (torch.rand(b, t, generator=g) > 0.2).to(device)
    weights = torch.randn(3, b, t, generator=g).to(device)

    def run(fn, x):
        x = x.detach().clone().requires_grad_(True)
        ts = fn(x, ids, mask, 0.9)
        loss = (ts.logprobs * weights[0] + ts.entropy * weights[1] + ts.self_certainty * weights[2]).sum()
        loss.double().backward()
        return ts, x.grad

    got, got_grad = run(fused_token_stats, logits)
    ref, ref_grad = run(reference_token_stats, logits.double())
    for name in ("logprobs", "entropy", "self_certainty"):
        err = getattr(got, name).detach().double() - getattr(ref, name).detach()
        out[f"fused_{name}_max_abs_err"] = float(err.abs().max())
    out["fused_grad_max_abs_err"] = float((got_grad.double() - ref_grad).abs().max())
    out["fused_ok"] = bool(
        max(out[f"fused_{n}_max_abs_err"] for n in ("logprobs", "entropy", "self_certainty")) < 1e-3
        and out["fused_grad_max_abs_err"] < 5e-2
    )

    # Engine vs HF: prefill logits on the left-padded prompts, then greedy tokens.
    p_ids, p_mask = encode(tok, prompts_for(sizes), device)
    decoder = StaticDecoder(model)
    decoder.setup(p_ids.shape[0], p_ids.shape[1] + 8)
    positions = (p_mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = decoder.prefill(p_ids, p_mask, all_logits=True).float()
        theirs = model(input_ids=p_ids, attention_mask=p_mask.long(), position_ids=positions).logits.float()
    out["engine_prefill_logits_max_abs_err"] = float((ours - theirs)[p_mask].abs().max())
    out["engine_prefill_logits_scale"] = float(theirs[p_mask].abs().max())
    engine = StaticEngine(model, tok, ignore_eos=True)
    n = sizes["greedy_tokens"]
    gen = engine.generate(p_ids, p_mask, max_new_tokens=n, temperature=0.0, top_p=1.0)
    hf = model.generate(
        input_ids=p_ids, attention_mask=p_mask.long(), max_new_tokens=n, min_new_tokens=n, do_sample=False
    )[:, p_ids.shape[1] :]
    same = (gen.completion_ids == hf).float()
    out["engine_greedy_token_agreement"] = float(same.mean())
    # bf16 kernels differ in summation order: count the greedy tokens before the first divergence.
    first_diff = [(row == 0).nonzero()[0].item() if (row == 0).any() else n for row in same]
    out["engine_greedy_first_divergence_mean"] = float(np.mean(first_diff))
    out["engine_greedy_exact_rows"] = int(sum(d == n for d in first_diff))
    return out


def section_stats(sizes: dict, device: torch.device) -> dict:
    from weakreward.kernels.fused_stats import fused_token_stats
    from weakreward.kernels.token_stats import reference_token_stats

    b, t, v = sizes["stats_shape"]
    iters = 10 if device.type == "cuda" else 1
    logits = torch.randn(b, t, v, device=device, dtype=torch.bfloat16) * 3
    ids = torch.randint(0, v, (b, t), device=device)
    mask = torch.ones(b, t, dtype=torch.bool, device=device)
    out: dict[str, Any] = {"stats_shape": [b, t, v], "logits_gib": logits.numel() * 2 / 2**30}
    with torch.no_grad():
        out["naive_stats_ms"] = timed(lambda: naive_stats(logits, ids), device, iters)
        out["naive_stats_extra_gib"] = peak_extra_gib(lambda: naive_stats(logits, ids), device)
        out["fused_stats_ms"] = timed(lambda: fused_token_stats(logits, ids, mask), device, iters)
        out["fused_stats_extra_gib"] = peak_extra_gib(lambda: fused_token_stats(logits, ids, mask), device)
        out["reference_stats_ms"] = timed(lambda: reference_token_stats(logits, ids, mask), device, iters)

    # Forward + backward (the training path): gradient of logp + 0.01·H w.r.t. the bf16 logits.
    def fwd_bwd(fn):
        def go():
            x = logits.detach().requires_grad_(True)
            ts = fn(x, ids, mask)
            (ts.logprobs.sum() + 0.01 * ts.entropy.sum()).backward()
            return x.grad

        return go

    def naive_fn(x, i, m):
        from weakreward.rollouts import TokenStats

        lp, ent, sc = naive_stats(x, i)
        return TokenStats(lp, ent, sc, m)

    out["naive_stats_fwd_bwd_ms"] = timed(fwd_bwd(naive_fn), device, max(1, iters // 2))
    out["naive_stats_fwd_bwd_extra_gib"] = peak_extra_gib(fwd_bwd(naive_fn), device)
    out["fused_stats_fwd_bwd_ms"] = timed(fwd_bwd(fused_token_stats), device, max(1, iters // 2))
    out["fused_stats_fwd_bwd_extra_gib"] = peak_extra_gib(fwd_bwd(fused_token_stats), device)
    logits = None  # frees the [B, T, V] logits before the head section

    # The LM head too: hidden [B, T, C] → statistics, forward + backward into hidden and the weight.
    # "head_then_fused": hidden @ Wᵀ materialises the bf16 logits, then the fused kernel;
    # "fused_linear": chunked head + kernel, logits never held whole.
    from weakreward.kernels.fused_linear_stats import fused_linear_token_stats

    c = sizes["model"]["hidden_size"]
    hidden = torch.randn(b, t, c, device=device, dtype=torch.bfloat16)
    weight = (torch.randn(v, c, device=device) / c**0.5).to(torch.bfloat16)

    def head(fn):
        def go():
            h = hidden.detach().requires_grad_(True)
            w = weight.detach().requires_grad_(True)
            ts = fn(h, w)
            (ts.logprobs.sum() + 0.01 * ts.entropy.sum()).backward()
            return h.grad, w.grad

        return go

    def head_then_fused(h, w):
        return fused_token_stats(h @ w.T, ids, mask)

    def fused_linear(h, w):
        return fused_linear_token_stats(h, w, ids, mask)

    for name, fn in (("head_then_fused", head_then_fused), ("fused_linear", fused_linear)):
        out[f"{name}_fwd_bwd_ms"] = timed(head(fn), device, max(1, iters // 2))
        out[f"{name}_fwd_bwd_extra_gib"] = peak_extra_gib(head(fn), device)
    return out


def section_rollout(
    sizes: dict, device: torch.device, tok: Any, model: torch.nn.Module, compile_step: bool = False
) -> dict:
    """HF generate vs the engine; with ``compile_step`` only the engine, its decode step compiled by
    Inductor before capture (keys get a ``_compiled`` suffix)."""
    from weakreward.rollout.static import StaticEngine

    n_new = sizes["new_tokens"]
    prompts = [p for p in prompts_for(sizes) for _ in range(sizes["group"])]
    p_ids, p_mask = encode(tok, prompts, device)
    tokens = len(prompts) * n_new
    out: dict[str, Any] = {"rollout_rows": len(prompts), "rollout_new_tokens": n_new, "prompt_len": p_ids.shape[1]}

    def hf(n):
        return model.generate(
            input_ids=p_ids,
            attention_mask=p_mask.long(),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
        )

    if not compile_step:
        with torch.no_grad():
            start = time.perf_counter()
            hf(4)
            sync(device)
            out["hf_generate_warmup_s"] = time.perf_counter() - start
            start = time.perf_counter()
            hf(n_new)
            sync(device)
            out["hf_generate_s"] = time.perf_counter() - start
        out["hf_generate_tok_s"] = tokens / out["hf_generate_s"]

    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    engine = StaticEngine(model, tok, ignore_eos=True, compile=compile_step)
    engine.setup(len(prompts), p_ids.shape[1] + n_new)
    sync(device)
    sfx = "_compiled" if compile_step else ""
    out[f"our_rollout_warmup_s{sfx}"] = time.perf_counter() - start
    out[f"our_capture_s{sfx}"] = engine.capture_seconds
    engine.generate(p_ids, p_mask, max_new_tokens=n_new, temperature=1.0, top_p=1.0, generator=g)  # warm caches
    sync(device)
    runs = []
    for _ in range(3 if device.type == "cuda" else 1):
        start = time.perf_counter()
        gen = engine.generate(p_ids, p_mask, max_new_tokens=n_new, temperature=1.0, top_p=1.0, generator=g)
        sync(device)
        runs.append(time.perf_counter() - start)
    assert gen.completion_ids.shape == (len(prompts), n_new)
    out[f"our_rollout_s{sfx}"] = statistics.median(runs)
    out[f"our_rollout_tok_s{sfx}"] = tokens / out[f"our_rollout_s{sfx}"]
    if not compile_step:
        out["rollout_speedup"] = out["our_rollout_tok_s"] / out["hf_generate_tok_s"]
    return out


class _RandomReward:
    """A seeded random score per completion (the step time must not depend on a verifier)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def scores(self, n: int) -> np.ndarray:
        return self.rng.random(n)


def section_trl(sizes: dict, device: torch.device, tok: Any, dtype: torch.dtype) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    model = build_model(sizes, tok, device, dtype).train()
    rng = _RandomReward(1)

    def reward(completions, **kwargs):
        return rng.scores(len(completions)).tolist()

    times: list[float] = []
    peaks: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync(device)
            times.append(time.perf_counter() - self.start)
            if device.type == "cuda":
                peaks.append(torch.cuda.max_memory_allocated(device) / 2**30)

    n_new = sizes["new_tokens"]
    rows = sizes["prompts"] * sizes["group"]
    steps = sizes["trl_steps"]
    data = Dataset.from_dict(
        {"prompt": [prompts_for(sizes)[i % sizes["prompts"]] for i in range(sizes["prompts"] * steps)]}
    )
    with tempfile.TemporaryDirectory() as run_dir:
        args = GRPOConfig(
            output_dir=run_dir,
            per_device_train_batch_size=rows,
            num_generations=sizes["group"],
            max_completion_length=n_new,
            generation_kwargs={"min_new_tokens": n_new},  # forced length, as for our engine
            max_steps=steps,
            learning_rate=1e-6,
            beta=0.0,
            temperature=1.0,
            top_p=1.0,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            bf16=device.type == "cuda" and dtype == torch.bfloat16,
            use_cpu=device.type != "cuda",
            shuffle_dataset=False,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data, processing_class=tok)
        trainer.add_callback(Timer())
        trainer.train()
    out: dict[str, Any] = {"trl_step_times_s": times}
    out["trl_step_s"] = times[-1]
    out["trl_peak_gib"] = peaks[-1] if peaks else None
    out["trl_config"] = {
        "gradient_checkpointing": args.gradient_checkpointing,
        "optim": str(args.optim),
        "loss_type": args.loss_type,
        "beta": args.beta,
    }
    del trainer, model
    return out


def section_ours(
    sizes: dict, device: torch.device, tok: Any, dtype: torch.dtype, micro_batch_size: int | None = None
) -> dict:
    """weakreward's GRPO step; with ``micro_batch_size`` the keys get an ``_mb<k>`` suffix (memory for
    speed: gradient accumulation over micro-batches)."""
    from weakreward.grpo.config import GRPOConfig
    from weakreward.grpo.trainer import GRPOTrainer
    from weakreward.rewards.base import Reward, RewardResult
    from weakreward.rollout.static import StaticEngine

    rng = _RandomReward(1)

    class RandomReward(Reward):
        name = "random"

        def compute(self, rollouts):
            return RewardResult(rng.scores(len(rollouts)))

    model = build_model(sizes, tok, device, dtype)
    # Forced completion length: the static engine with EOS ignored (as TRL's min_new_tokens).
    engine = StaticEngine(model, tok, ignore_eos=True)
    problems = [{"prompt": p, "answer": None} for p in prompts_for(sizes)]
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = GRPOConfig(
            steps=sizes["steps"],
            prompts_per_step=sizes["prompts"],
            group_size=sizes["group"],
            max_new_tokens=sizes["new_tokens"],
            lr=1e-6,
            beta=0.0,
            temperature=1.0,
            top_p=1.0,
            engine="static",
            dtype="bfloat16" if dtype == torch.bfloat16 else "float32",
            device=str(device),
            run_dir=run_dir,
            progress=False,
            micro_batch_size=micro_batch_size,
        )
        trainer = GRPOTrainer(model, RandomReward(), problems, tokenizer=tok, config=cfg, engine=engine)
        sfx = f"_mb{micro_batch_size}" if micro_batch_size else ""
        out: dict[str, Any] = {f"our_engine{sfx}": type(trainer.engine).__name__}
        times, peaks = [], []
        for step in (1, 2):  # 1 = warm-up (graph capture, allocator), 2 = timed
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            trainer.train_step(step)
            sync(device)
            times.append(time.perf_counter() - start)
            if device.type == "cuda":
                peaks.append(torch.cuda.max_memory_allocated(device) / 2**30)
        out[f"our_step_times_s{sfx}"] = times
        out[f"our_step_s{sfx}"] = times[-1]
        out[f"our_peak_gib{sfx}"] = peaks[-1] if peaks else None
        out[f"our_step_breakdown_s{sfx}"] = _instrumented_step(trainer, device, step=3)
    del trainer, model
    return out


def _instrumented_step(trainer: Any, device: torch.device, step: int) -> dict[str, float]:
    """One more step with a sync around each phase (so slightly slower than the clean one):
    rollout (engine.generate), statistics (the policy forward + token statistics), backward (loss
    backward), optimizer (clip + AdamW + sync_weights), other (reward, advantages, metrics)."""
    spent = {"rollout": 0.0, "stats": 0.0, "backward": 0.0, "optimizer": 0.0}

    def wrap(obj, name, key):
        original = getattr(obj, name)

        def inner(*args, **kwargs):
            sync(device)
            start = time.perf_counter()
            result = original(*args, **kwargs)
            sync(device)
            spent[key] += time.perf_counter() - start
            return result

        setattr(obj, name, inner)
        return original

    restore = [
        (trainer.engine, "generate", wrap(trainer.engine, "generate", "rollout")),
        (trainer, "_token_stats", wrap(trainer, "_token_stats", "stats")),
        (trainer.optimizer, "step", wrap(trainer.optimizer, "step", "optimizer")),
        (trainer.engine, "sync_weights", wrap(trainer.engine, "sync_weights", "optimizer")),
    ]
    original_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        sync(device)
        start = time.perf_counter()
        original_backward(self, *args, **kwargs)
        sync(device)
        spent["backward"] += time.perf_counter() - start

    torch.Tensor.backward = backward
    try:
        sync(device)
        start = time.perf_counter()
        trainer.train_step(step)
        sync(device)
        total = time.perf_counter() - start
    finally:
        torch.Tensor.backward = original_backward
        for obj, name, original in restore:
            if name in vars(obj):
                delattr(obj, name)
            else:
                setattr(obj, name, original)
    spent["other"] = total - sum(spent.values())
    spent["total"] = total
    return spent


# -- main -------------------------------------------------------------------------------------------


def card_name(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu-smoke"
    name = torch.cuda.get_device_name(device).lower()
    for key in ("h200", "h100", "a100", "l40", "l4", "a10"):
        if key in name:
            return key
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on whatever device (checks the script)")
    parser.add_argument(
        "--out-dir", default=os.environ.get("OUT") or "bench/results", help="folder for gpu-<card>.json"
    )
    parser.add_argument(
        "--sections",
        default=None,
        help="comma-separated subset of correctness,stats,rollout,trl,ours,ours_microbatch,rollout_compiled (default: all; "
        "with --smoke all but rollout_compiled, whose CPU compile takes minutes)",
    )
    args = parser.parse_args(argv)
    sizes = SMOKE_SIZES if args.smoke else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        parser.error("no CUDA device: run with --smoke for the CPU check")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    import transformers

    result: dict[str, Any] = {
        "card": card_name(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "smoke": args.smoke,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "workload": {k: v for k, v in sizes.items() if k != "model"} | {"model": sizes["model"], "dtype": str(dtype)},
        "errors": {},
        "section_s": {},
    }
    with contextlib.suppress(ImportError):
        import triton

        result["triton"] = triton.__version__
    with contextlib.suppress(ImportError):
        import trl

        result["trl"] = trl.__version__
    tok = bench_tokenizer(sizes["model"]["vocab_size"])
    shared_model = build_model(sizes, tok, device, dtype)
    sections = {
        "correctness": lambda: section_correctness(sizes, device, tok, shared_model),
        "stats": lambda: section_stats(sizes, device),
        "rollout": lambda: section_rollout(sizes, device, tok, shared_model),
        "trl": lambda: section_trl(sizes, device, tok, dtype),
        "ours": lambda: section_ours(sizes, device, tok, dtype),
        "ours_microbatch": lambda: section_ours(sizes, device, tok, dtype, micro_batch_size=max(1, sizes["group"] * 2)),
        # Last: Inductor's compile time is the least predictable part of the run.
        "rollout_compiled": lambda: section_rollout(sizes, device, tok, shared_model, compile_step=True),
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"gpu-{result['card']}.json"
    chosen = args.sections or ",".join(n for n in sections if not (args.smoke and n == "rollout_compiled"))
    for name in [s.strip() for s in chosen.split(",") if s.strip()]:
        start = time.perf_counter()
        print(f"[gpu_bench] {name} ...", flush=True)
        if device.type == "cuda":  # what was resident before the section (peaks above are absolute)
            result.setdefault("baseline_gib", {})[name] = torch.cuda.memory_allocated(device) / 2**30
        try:
            result.update(sections[name]())
        except Exception as err:  # one failing section must not lose the others' numbers
            result["errors"][name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        result["section_s"][name] = time.perf_counter() - start
        print(f"[gpu_bench] {name} done in {result['section_s'][name]:.1f}s", flush=True)
        path.write_text(json.dumps(result, indent=2, default=str))  # after each section: partial results survive
    if "trl_step_s" in result and "our_step_s" in result:
        result["step_speedup"] = result["trl_step_s"] / result["our_step_s"]
    if "naive_stats_ms" in result and "fused_stats_ms" in result:
        result["stats_speedup"] = result["naive_stats_ms"] / result["fused_stats_ms"]
    path.write_text(json.dumps(result, indent=2, default=str))
    summary = {k: result.get(k) for k in REQUIRED_KEYS}
    print(json.dumps(summary, indent=2, default=str))
    print(f"[gpu_bench] wrote {path}", flush=True)
    return result


REQUIRED_KEYS = (
    "card",
    "trl_step_s",
    "our_step_s",
    "trl_peak_gib",
    "our_peak_gib",
    "hf_generate_tok_s",
    "our_rollout_tok_s",
    "naive_stats_ms",
    "naive_stats_extra_gib",
    "fused_stats_ms",
    "fused_stats_extra_gib",
)


if __name__ == "__main__":
    main()
