"""One GRPO step, ours vs TRL's ``GRPOTrainer``, on the same tiny Llama, data, group size and lengths (CPU).

Both trainers: full fine-tuning of a random Llama (char tokenizer), 4 prompts x 4 completions per step,
32 new tokens, temperature 1, beta 0 (no reference), one policy update per batch, the same reward
function. Each runs 1 warm-up step and then ``--steps`` timed steps; the JSON holds the fastest and the median step time,
the rollout / train split, the process CPU time (steadier than wall time on a shared machine), time per completion token (a random model's lengths vary), and ours / TRL
(target: ratio <= 1.0). The two alternate in rounds so that a change in machine load hits both.

Run: ``python bench/grpo_cpu.py`` (writes bench/results/grpo_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from weakreward import GRPOConfig, GRPOTrainer
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts

PROMPTS = [f"{a}+{b}=" for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1), (2, 3), (4, 5), (6, 7)]]
MODEL = dict(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2)


def digit_share(completions: list[str]) -> list[float]:
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


class DigitShare(Reward):
    name = "digits"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        return RewardResult(np.asarray(digit_share(list(rollouts.completions))))


def trl_reward(completions, **kwargs):
    return digit_share([c if isinstance(c, str) else c[-1]["content"] for c in completions])


def run_ours(args: argparse.Namespace, out_dir: str) -> dict:
    tok = char_tokenizer()
    cfg = GRPOConfig(
        steps=args.steps + 1,
        group_size=args.group_size,
        prompts_per_step=args.prompts,
        max_new_tokens=args.new_tokens,
        lr=1e-5,
        beta=0.0,
        loss_agg="token-mean",
        run_dir=out_dir,
        save_every=0,
        progress=False,
        device="cpu",
    )
    trainer = GRPOTrainer(
        tiny_llama(tok, **MODEL),
        DigitShare(),
        [{"prompt": p, "answer": None} for p in PROMPTS],
        tokenizer=tok,
        config=cfg,
    )
    trainer.save_checkpoint = lambda: None  # type: ignore[method-assign]  # time steps, not disk
    trainer.save_final = lambda: None  # type: ignore[method-assign]
    steps = []
    for step in range(1, cfg.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        m = trainer.train_step(step)
        steps.append(
            {
                "step_s": time.perf_counter() - t0,
                "cpu_s": time.process_time() - c0,
                "rollout_s": m["rollout_s"],
                "train_s": m["train_s"],
                "tokens": m["completion_len/mean"] * cfg.batch_size,
            }
        )
    del trainer
    return steps[1:]


def run_trl(args: argparse.Namespace, out_dir: str) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    tok = char_tokenizer()
    model = tiny_llama(tok, **MODEL)
    gen_time = [0.0]
    original = model.generate

    gen_tokens = [0]

    def timed_generate(*a, **k):
        t0 = time.perf_counter()
        try:
            out = original(*a, **k)
        finally:
            gen_time[0] += time.perf_counter() - t0
        prompt_len = (k.get("input_ids") if "input_ids" in k else a[0]).shape[1]
        completion = out[:, prompt_len:]
        eos = (completion == tok.eos_token_id).int()
        # Tokens up to and including the first EOS, as our completion_mask counts them.
        gen_tokens[0] += int(((eos.cumsum(1) - eos) == 0).sum())
        return out

    model.generate = timed_generate  # type: ignore[method-assign]
    steps: list[dict] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()
            gen_time[0] = 0.0
            gen_tokens[0] = 0

        def on_step_end(self, *a, **k):
            total = time.perf_counter() - self.t0
            steps.append(
                {
                    "step_s": total,
                    "cpu_s": time.process_time() - self.c0,
                    "rollout_s": gen_time[0],
                    "train_s": total - gen_time[0],
                    "tokens": gen_tokens[0],
                }
            )

    config = TRLConfig(
        output_dir=out_dir,
        num_generations=args.group_size,
        per_device_train_batch_size=args.prompts * args.group_size,
        max_completion_length=args.new_tokens,
        learning_rate=1e-5,
        beta=0.0,
        loss_type="dapo",
        max_steps=args.steps + 1,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        disable_tqdm=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        seed=0,
    )
    trainer = TRLTrainer(
        model=model,
        processing_class=tok,
        reward_funcs=[trl_reward],
        args=config,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        callbacks=[Timer()],
    )
    trainer.train()
    return steps[1:]


def _summary(steps: list[dict]) -> dict:
    med = {k: statistics.median(s[k] for s in steps) for k in ("step_s", "cpu_s", "rollout_s", "train_s")}
    med["completion_tokens_per_step"] = statistics.mean(s["tokens"] for s in steps)
    med["ms_per_completion_token"] = 1000 * statistics.median(s["step_s"] / max(1, s["tokens"]) for s in steps)
    best = min(steps, key=lambda s: s["step_s"])
    med["best_step_s"] = best["step_s"]
    med["best_rollout_s"] = best["rollout_s"]
    med["best_train_s"] = best["train_s"]
    med["dominant"] = "rollout" if med["rollout_s"] >= med["train_s"] else "train"
    med["steps_timed"] = len(steps)
    med["step_s_all"] = [round(s["step_s"], 4) for s in steps]
    med["cpu_s_all"] = [round(s["cpu_s"], 4) for s in steps]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round (after 1 warm-up step)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours / TRL")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpo_cpu.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    # Alternate the two (ours, TRL, ours, TRL, ...) so a change in machine load hits both alike.
    ours_steps: list[dict] = []
    trl_steps: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            ours_steps += run_ours(args, os.path.join(tmp, f"ours{r}"))
            trl_steps += run_trl(args, os.path.join(tmp, f"trl{r}"))
    ours, trl = _summary(ours_steps), _summary(trl_steps)
    import trl as trl_pkg

    result = {
        "benchmark": "one GRPO step on the CPU, weakreward vs trl.GRPOTrainer",
        "setup": {
            "model": {"arch": "llama", **MODEL, "vocab": len(char_tokenizer())},
            "prompts_per_step": args.prompts,
            "group_size": args.group_size,
            "max_new_tokens": args.new_tokens,
            "beta": 0.0,
            "loss": "token-mean (dapo)",
            "timed_steps": args.steps * args.rounds,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "torch": torch.__version__,
            "trl": trl_pkg.__version__,
            "machine": platform.machine(),
        },
        "weakreward": ours,
        "trl": trl,
        # On a shared machine the fastest step is the least disturbed estimate (timeit's convention);
        # the medians are kept for reference.
        "ratio_best_step_s": ours["best_step_s"] / trl["best_step_s"],
        "ratio_step_s": ours["step_s"] / trl["step_s"],
        "ratio_cpu_s": ours["cpu_s"] / trl["cpu_s"],
        "ratio_ms_per_completion_token": ours["ms_per_completion_token"] / trl["ms_per_completion_token"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "weakreward",
                    "trl",
                    "ratio_best_step_s",
                    "ratio_step_s",
                    "ratio_cpu_s",
                    "ratio_ms_per_completion_token",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
