"""The built-in demo: SmolLM2-135M-Instruct learns arithmetic under a noisy reward, on a CPU.

The training reward is ``NoisyReward(MathVerifier(), flip=0.2)``: one completion in five gets the wrong
reward. The true verifier runs alongside as a monitor the policy never trains on, so the run shows both
the reward the trainer sees and the accuracy it cannot see. LoRA keeps the update cheap enough for two
CPU cores.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from weakreward.data.arithmetic import arithmetic_problems
from weakreward.grpo.callbacks import Callback
from weakreward.grpo.config import GRPOConfig, LoRAConfig

# Operands 1..10: SmolLM2-135M gets about a third of these right at temperature 1, leaving room to learn.
DEMO_MAX_OPERAND = 10


def demo_config(**overrides: Any) -> GRPOConfig:
    """The demo's tuned setting (SmolLM2-135M + LoRA on a 2-core CPU).

    Examples:
        >>> demo_config().lora.r, demo_config(steps=5).steps
        (16, 5)
    """
    base: dict[str, Any] = {
        "steps": 24,
        "prompts_per_step": 4,
        "group_size": 6,
        "max_new_tokens": 16,
        "lr": 5e-4,
        "beta": 0.0,
        "temperature": 1.0,
        # Adapters on the top 10 of 30 layers only: the backward pass stops there (half the step cost).
        "lora": LoRAConfig(r=16, alpha=32.0, layers=10),
        "save_every": 8,
        "run_dir": "runs/demo",
        "device": "cpu",
        # float32 throughout (the trainer's CPU defaults), so the gradient comes from the rollout's own
        # forward (weakreward.rollout.tape): on the project's 2-core CPU 50 s of training against 61 s with
        # bfloat16 sampling and a bf16-autocast training forward (rollout_dtype="bfloat16", autocast="always").
        "progress": False,  # the demo prints its own per-step table; a progress bar would interleave with it
    }
    base.update(overrides)
    return GRPOConfig(**base)


class StepTable(Callback):
    """Prints one row per step: training reward, the true-accuracy monitor, length, KL and timings."""

    COLUMNS = ("step", "reward", "true acc", "len", "kl", "rollout s", "train s")

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_train_begin(self, trainer: Any) -> None:
        self._print(" ".join(f"{c:>9}" for c in self.COLUMNS))

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """Print the step's row (a missing reward or true-accuracy value prints as NaN).

        Args: as `Callback.on_step_end`.
        """
        row = (
            f"{step:>9d}",
            f"{metrics.get('reward/mean', math.nan):>9.3f}",
            f"{metrics.get('monitor/true/mean', math.nan):>9.3f}",
            f"{metrics['completion_len/mean']:>9.1f}",
            f"{metrics['kl']:>9.2e}",
            f"{metrics['rollout_s']:>9.1f}",
            f"{metrics['train_s']:>9.1f}",
        )
        self._print(" ".join(row))


def summarise(history: list[dict[str, Any]], window: int = 5) -> dict[str, float]:
    """Mean training reward and true accuracy over the first and last ``window`` steps.

    Args:
        history: The trainer's per-step metrics.
        window: Steps averaged at the start and at the end.

    Examples:
        >>> h = [{"reward/mean": r, "monitor/true/mean": r / 2} for r in (0.1, 0.2, 0.5, 0.6)]
        >>> summarise(h, window=2)["reward_last"]
        0.55
    """

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(values) / len(values), 6) if values else math.nan

    first, last = history[:window], history[-window:]
    return {
        "reward_first": mean(first, "reward/mean"),
        "reward_last": mean(last, "reward/mean"),
        "true_first": mean(first, "monitor/true/mean"),
        "true_last": mean(last, "monitor/true/mean"),
    }


def plot_curves(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Save a PNG of the training reward, the true-accuracy monitor and the completion length per step.

    Args:
        history: The trainer's per-step metrics.
        path: The PNG file to write.
    """
    # A bare Figure on the Agg canvas: pyplot's global backend (the user's) stays as it is.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in history]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(steps, [r.get("reward/mean") for r in history], label="training reward (noisy, flip=0.2)")
    ax1.plot(steps, [r.get("monitor/true/mean") for r in history], label="true accuracy (monitor)")
    ax1.set_xlabel("step")
    ax1.set_ylim(0, 1)
    ax1.legend()
    ax1.set_title("reward vs. true accuracy")
    ax2.plot(steps, [r.get("completion_len/mean") for r in history], color="tab:green")
    ax2.set_xlabel("step")
    ax2.set_title("mean completion length (tokens)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def run_demo(
    run_dir: str = "runs/demo", *, steps: int | None = None, seed: int = 0, resume: bool = False, **overrides: Any
) -> dict[str, float]:
    """Train SmolLM2-135M-Instruct on the arithmetic task under ``NoisyReward(MathVerifier(), flip=0.2)``.

    Prints a per-step table, writes ``run_dir/metrics.jsonl`` and ``run_dir/curves.png``, and returns
    `summarise` of the run plus its wall time.

    Args:
        run_dir: Folder for metrics.jsonl, checkpoints and curves.png (an earlier demo run there is replaced unless ``resume``).
        steps: Training steps; None = the demo's default.
        seed: Seeds the problems, the noise and the trainer.
        resume: Continue the run in ``run_dir`` from its latest checkpoint.
        **overrides: Other `GRPOConfig` fields.
    """
    from weakreward.grpo.trainer import GRPOTrainer
    from weakreward.rewards.math_verifier import MathVerifier
    from weakreward.rewards.noise import NoisyReward

    if steps is not None:
        overrides["steps"] = steps
    overrides.setdefault("overwrite", not resume)  # re-running the demo replaces its previous run
    config = demo_config(run_dir=run_dir, seed=seed, resume="latest" if resume else None, **overrides)
    verifier = MathVerifier()
    reward = NoisyReward(verifier, flip=0.2, seed=seed)
    print(
        f"weakreward demo: SmolLM2-135M-Instruct (GGUF), LoRA r={config.lora.r if config.lora else '-'}, "
        f"{config.steps} steps x {config.prompts_per_step} prompts x {config.group_size} samples, reward {reward.name}",
        flush=True,
    )
    t0 = time.perf_counter()
    trainer = GRPOTrainer(
        "smollm2-gguf",
        reward,
        arithmetic_problems(256, seed=seed, high=DEMO_MAX_OPERAND),
        config=config,
        monitors={"true": verifier},  # one worker pool for both
        callbacks=[StepTable()],
    )
    load_s = time.perf_counter() - t0
    trainer.train()
    train_s = time.perf_counter() - t0 - load_s
    history = trainer.history
    summary = summarise(history)
    summary.update({"load_s": round(load_s, 1), "train_wall_s": round(train_s, 1)})
    plot = plot_curves(history, Path(run_dir) / "curves.png")
    learned = summary["reward_last"] > summary["reward_first"] and summary["true_last"] > summary["true_first"]
    print(
        f"\nfirst 5 steps: reward {summary['reward_first']:.3f}, true accuracy {summary['true_first']:.3f}\n"
        f"last 5 steps:  reward {summary['reward_last']:.3f}, true accuracy {summary['true_last']:.3f}\n"
        f"{'learning: both rose' if learned else 'no clear learning in this run'}; "
        f"training took {train_s / 60:.1f} min (model load {load_s:.0f} s)\n"
        f"metrics: {Path(run_dir) / 'metrics.jsonl'}  plot: {plot}",
        flush=True,
    )
    return summary
