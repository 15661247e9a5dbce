"""One GRPO step, ours vs TRL's ``GRPOTrainer``, on the same model, data, group size and lengths (CPU).

Two shapes, each run alternating ours / TRL in rounds so that a change in machine load hits both:

- **tiny**: full fine-tuning of a random Llama (char tokenizer), 4 prompts x 4 completions per step, 32
  new tokens, temperature 1, beta 0 (no reference), one policy update per batch, the same reward
  function (target: ours / TRL <= 0.5, ``ratio_best_step_s``); ours also runs with a training forward
  (``rollout_activations="never"``, key ``weakreward_training_forward``) in the same rounds.
- **demo**: the demo's shape on the real SmolLM2-135M-Instruct weights (the embedded GGUF, dequantised
  and saved as safetensors in a temporary folder, since TRL refuses a model transformers marks as
  GGUF-quantised; both trainers load that folder): 4 chat prompts x 6 completions, 16 new tokens, LoRA
  r=16 on the top 10 layers, lr 5e-4, beta 0, the same boxed-answer reward for both (target:
  ``demo_speedup_vs_trl`` = TRL step time / ours >= 2), in float32 and again with bfloat16 matmuls over
  float32 weights for both (``demo_bf16_speedup_vs_trl``: ours with ``rollout_dtype="bfloat16"`` and
  ``autocast="always"``, TRL with ``bf16=True``), the demo's setting on a CPU with native bfloat16.

Each run has 1 warm-up step and then ``--steps`` timed steps; the JSON holds the fastest and the median
step time, the rollout / train split, the process CPU time (steadier than wall time on a shared
machine), the time per completion token (lengths vary) and ``os.getloadavg()``.

Run: ``python bench/grpo_cpu.py`` (writes bench/results/grpo_cpu.json); ``--shapes tiny`` for the quick one.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
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
DEMO_LORA = dict(r=16, alpha=32.0, top_layers=10)
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def digit_share(completions: list[str]) -> list[float]:
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


class DigitShare(Reward):
    name = "digits"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        return RewardResult(np.asarray(digit_share(list(rollouts.completions))))


def trl_reward(completions, **kwargs):
    return digit_share([c if isinstance(c, str) else c[-1]["content"] for c in completions])


def boxed_match(completions: list[str], answers: list[str]) -> list[float]:
    """1 when the completion's first ``\\boxed{...}`` equals the reference, else 0 (both trainers)."""
    out = []
    for text, answer in zip(completions, answers):
        found = BOXED.search(text)
        out.append(float(found is not None and found.group(1).strip() == str(answer)))
    return out


class BoxedMatch(Reward):
    name = "boxed"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        return RewardResult(np.asarray(boxed_match(list(rollouts.completions), list(rollouts.references))))


def trl_boxed(completions, answer, **kwargs):
    return boxed_match([c if isinstance(c, str) else c[-1]["content"] for c in completions], answer)


def demo_problems(n: int = 64) -> list[dict]:
    from weakreward.data.arithmetic import arithmetic_problems
    from weakreward.grpo.demo import DEMO_MAX_OPERAND

    return arithmetic_problems(n, seed=0, high=DEMO_MAX_OPERAND)


def save_demo_weights(folder: str) -> str:
    """The embedded SmolLM2 GGUF, dequantised, saved as plain safetensors (no GGUF quantisation marker)."""
    from transformers import AutoModelForCausalLM

    from weakreward.models import load_model

    model, tok = load_model("smollm2-gguf")
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # transformers would mark the reloaded model quantised, and TRL refuse it
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    plain.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def run_ours(
    args: argparse.Namespace, out_dir: str, demo: str | None = None, bf16: bool = False, tape: bool = True
) -> dict:
    from weakreward.grpo.config import LoRAConfig

    tok = char_tokenizer()
    common = dict(
        rollout_activations="auto" if tape else "never",
        steps=args.steps + 1,
        beta=0.0,
        loss_agg="token-mean",
        run_dir=out_dir,
        save_every=0,
        progress=False,
        device="cpu",
        temperature=1.0,
        top_p=1.0,
    )
    if demo is None:
        cfg = GRPOConfig(
            group_size=args.group_size,
            prompts_per_step=args.prompts,
            max_new_tokens=args.new_tokens,
            lr=1e-5,
            **common,
        )
        model, tokenizer, reward = tiny_llama(tok, **MODEL), tok, DigitShare()
        problems = [{"prompt": p, "answer": None} for p in PROMPTS]
    else:
        cfg = GRPOConfig(
            group_size=6,
            prompts_per_step=4,
            max_new_tokens=16,
            lr=5e-4,
            lora=LoRAConfig(r=DEMO_LORA["r"], alpha=DEMO_LORA["alpha"], layers=DEMO_LORA["top_layers"]),
            # bf16: sampling and the training forward in bfloat16 matmuls over float32 weights (the demo's
            # setting where the CPU multiplies bfloat16 natively); TRL gets bf16=True, its CPU autocast.
            rollout_dtype="bfloat16" if bf16 else "policy",
            autocast="always" if bf16 else "never",
            **common,
        )
        model, tokenizer, reward, problems = demo, None, BoxedMatch(), demo_problems()
    trainer = GRPOTrainer(model, reward, problems, tokenizer=tokenizer, config=cfg)
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


def run_trl(args: argparse.Namespace, out_dir: str, demo: str | None = None, bf16: bool = False) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    if demo is None:
        tok = char_tokenizer()
        model = tiny_llama(tok, **MODEL)
        group, new_tokens, lr = args.group_size, args.new_tokens, 1e-5
        per_step, reward_funcs, dataset = args.prompts * args.group_size, [trl_reward], {"prompt": PROMPTS}
        peft_config = None
    else:
        from peft import LoraConfig

        tok = AutoTokenizer.from_pretrained(demo)
        model = AutoModelForCausalLM.from_pretrained(demo)
        problems = demo_problems()
        group, new_tokens, lr, per_step, reward_funcs = 6, 16, 5e-4, 24, [trl_boxed]
        dataset = {"prompt": [p["prompt"] for p in problems], "answer": [p["answer"] for p in problems]}
        n_layers = model.config.num_hidden_layers
        # The demo's adapters: the same modules, rank and layers as weakreward's LoRAConfig default.
        peft_config = LoraConfig(
            r=DEMO_LORA["r"],
            lora_alpha=DEMO_LORA["alpha"],
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            layers_to_transform=list(range(n_layers - DEMO_LORA["top_layers"], n_layers)),
            task_type="CAUSAL_LM",
        )
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
        num_generations=group,
        per_device_train_batch_size=per_step,
        max_completion_length=new_tokens,
        learning_rate=lr,
        beta=0.0,
        loss_type="dapo",
        max_steps=args.steps + 1,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=bf16,
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
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=Dataset.from_dict(dataset),
        callbacks=[Timer()],
        peft_config=peft_config,
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
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round, tiny shape (after 1 warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours / TRL, tiny shape")
    parser.add_argument("--demo-steps", type=int, default=2, help="timed steps per round, demo shape")
    parser.add_argument("--demo-rounds", type=int, default=2, help="alternating rounds, demo shape")
    parser.add_argument("--shapes", default="tiny,demo", help="comma-separated subset of tiny,demo")
    parser.add_argument(
        "--demo-precision",
        default="float32,bfloat16",
        help="demo shape: float32 (key demo), bfloat16 (key demo_bf16: bf16 matmuls for both trainers), or both",
    )
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpo_cpu.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    shapes = {s.strip() for s in args.shapes.split(",") if s.strip()}
    import trl as trl_pkg

    out_path = Path(args.out)
    result: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    result["benchmark"] = "one GRPO step on the CPU, weakreward vs trl.GRPOTrainer"
    result["torch"], result["trl"] = torch.__version__, trl_pkg.__version__
    with tempfile.TemporaryDirectory() as tmp:
        if "tiny" in shapes:
            load_before = os.getloadavg()
            # Alternate the two (ours, TRL, ours, TRL, ...) so a change in machine load hits both alike.
            ours_steps: list[dict] = []
            forward_steps: list[dict] = []
            trl_steps: list[dict] = []
            for r in range(args.rounds):
                ours_steps += run_ours(args, os.path.join(tmp, f"ours{r}"))
                forward_steps += run_ours(args, os.path.join(tmp, f"forward{r}"), tape=False)
                trl_steps += run_trl(args, os.path.join(tmp, f"trl{r}"))
            ours, forward, trl = _summary(ours_steps), _summary(forward_steps), _summary(trl_steps)
            result.update(
                {
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
                        "load_avg_1m": load_before[0],
                        "load_avg_before": load_before,
                        "load_avg_after": os.getloadavg(),
                        "torch": torch.__version__,
                        "trl": trl_pkg.__version__,
                        "machine": platform.machine(),
                    },
                    "weakreward": ours,
                    # The same trainer with a training forward (rollout_activations="never"): what the
                    # gradient from the rollout's own forward saves, in the same alternating run.
                    "weakreward_training_forward": forward,
                    "trl": trl,
                    "ratio_training_forward_step_s": forward["step_s"] / trl["step_s"],
                    # On a shared machine the fastest step is the least disturbed estimate (timeit's
                    # convention); the medians are kept for reference.
                    "ratio_best_step_s": ours["best_step_s"] / trl["best_step_s"],
                    "ratio_step_s": ours["step_s"] / trl["step_s"],
                    "ratio_cpu_s": ours["cpu_s"] / trl["cpu_s"],
                    "ratio_ms_per_completion_token": ours["ms_per_completion_token"] / trl["ms_per_completion_token"],
                    "target_ratio": 0.5,
                }
            )
            _write(out_path, result)
            print(json.dumps({k: result[k] for k in ("ratio_best_step_s", "ratio_step_s", "ratio_cpu_s")}), flush=True)
        if "demo" in shapes:
            weights = save_demo_weights(os.path.join(tmp, "smollm2"))
            demo_args = argparse.Namespace(**{**vars(args), "steps": args.demo_steps})
            for precision in args.demo_precision.split(","):
                bf16 = precision.strip() == "bfloat16"
                key = "demo_bf16" if bf16 else "demo"
                load_before = os.getloadavg()
                ours_steps, trl_steps = [], []
                for r in range(args.demo_rounds):
                    ours_dir, trl_dir = os.path.join(tmp, f"{key}-ours{r}"), os.path.join(tmp, f"{key}-trl{r}")
                    ours_steps += run_ours(demo_args, ours_dir, demo=weights, bf16=bf16)
                    print(f"{key} round {r + 1}: ours {[round(s['step_s'], 2) for s in ours_steps]}", flush=True)
                    trl_steps += run_trl(demo_args, trl_dir, demo=weights, bf16=bf16)
                    print(f"{key} round {r + 1}: trl {[round(s['step_s'], 2) for s in trl_steps]}", flush=True)
                ours, trl = _summary(ours_steps), _summary(trl_steps)
                result[key] = {
                    "setup": {
                        "model": "SmolLM2-135M-Instruct (embedded GGUF dequantised, saved as safetensors)",
                        "prompts_per_step": 4,
                        "group_size": 6,
                        "max_new_tokens": 16,
                        "lora": DEMO_LORA,
                        "lr": 5e-4,
                        "beta": 0.0,
                        "precision": "bf16 matmuls over float32 weights (both trainers)" if bf16 else "float32",
                        "reward": "boxed answer == reference (the same function for both)",
                        "timed_steps": args.demo_steps * args.demo_rounds,
                        "torch_threads": torch.get_num_threads(),
                        "load_avg_before": load_before,
                        "load_avg_after": os.getloadavg(),
                    },
                    "weakreward": ours,
                    "trl": trl,
                    "ratio_best_step_s": ours["best_step_s"] / trl["best_step_s"],
                    "ratio_step_s": ours["step_s"] / trl["step_s"],
                }
                # TRL's step time over ours: > 1 means weakreward is faster (target >= 2).
                result[f"{key}_speedup_vs_trl"] = trl["step_s"] / ours["step_s"]
                result[f"{key}_speedup_vs_trl_best"] = trl["best_step_s"] / ours["best_step_s"]
                _write(out_path, result)
                print(json.dumps({k: result[k] for k in (f"{key}_speedup_vs_trl", f"{key}_speedup_vs_trl_best")}))


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
