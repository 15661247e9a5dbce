"""weakreward rewards inside TRL's GRPOTrainer: a noisy verifier to train on, majority vote to watch.

``reward.as_trl()`` turns any weakreward `Reward` into the callable TRL's ``reward_funcs`` expects.
Here TRL trains on ``NoisyReward(MathVerifier(), flip=0.2)`` and logs ``MajorityVote`` with weight 0
(so it is computed and logged, never trained on). The adapter regroups completions by prompt, so the
vote sees each group whole; ``per_device_train_batch_size`` is a multiple of ``num_generations`` so that
no group is split. See docs/guides/other-trainers.md for verl and OpenRLHF.

Run: ``python examples/trl_integration.py`` (SmolLM2-135M-Instruct with LoRA on the CPU, a few
minutes), or ``--smoke`` for 1 step on a tiny random model. Needs ``pip install "weakreward[trl]"``.
"""

from __future__ import annotations

import argparse
import os

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from weakreward import MajorityVote, MathVerifier, NoisyReward
from weakreward.models import char_tokenizer, load_model, tiny_llama

QUESTIONS = {"What is 12 * 7?": "84", "What is 15 + 27?": "42", "What is 9 * 9?": "81", "What is 100 - 37?": "63"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("WEAKREWARD_SMOKE") == "1",
        help="1 step on a tiny random model (seconds) (or set WEAKREWARD_SMOKE=1)",
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 10; 1 with --smoke)")
    parser.add_argument("--run-dir", default="runs/trl", help="TRL output_dir (default: runs/trl)")
    args = parser.parse_args()

    if args.smoke:
        tokenizer = char_tokenizer()
        model, peft_config, max_len = tiny_llama(tokenizer), None, 8
    else:
        from peft import LoraConfig

        model, tokenizer = load_model("smollm2-gguf")  # the embedded SmolLM2-135M-Instruct, no download
        peft_config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
        max_len = 64
    steps = args.steps or (1 if args.smoke else 10)

    dataset = Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": f"{q} Put the final answer in \\boxed{{}}."}] for q in QUESTIONS],
            "answer": list(QUESTIONS.values()),  # the reference column the verifier reads
        }
    )
    verifier = MathVerifier(workers=1)
    noisy = NoisyReward(verifier, flip=0.2, seed=0)  # one verdict in five flipped
    vote = MajorityVote(verifier)  # label-free: agree with the group's majority

    config = GRPOConfig(
        output_dir=args.run_dir,
        num_generations=4,
        per_device_train_batch_size=8,  # 2 whole groups of 4
        max_completion_length=max_len,
        reward_weights=[1.0, 0.0],  # train on the noisy reward; majority vote is only logged
        learning_rate=5e-4 if not args.smoke else 1e-3,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,  # drop these two lines on a GPU
        bf16=False,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[noisy.as_trl(), vote.as_trl()],
        args=config,
        train_dataset=dataset,
        peft_config=peft_config,
    )
    try:
        trainer.train()
    finally:
        verifier.close()
    for row in trainer.state.log_history:
        if f"rewards/{noisy.name}/mean" in row:
            print(
                f"step {row['step']}: noisy reward {row[f'rewards/{noisy.name}/mean']:.3f}, "
                f"flipped {row.get(f'rewards/{noisy.name}/flipped', float('nan')):.3f}, "
                f"majority vote {row['rewards/majority_vote/mean']:.3f}"
            )


if __name__ == "__main__":
    main()
