"""Item 3: vote over more samples than are trained on, and mini-batches as the release.

The release's majority-vote runs sample ``TTRL_N_VOTES_PER_PROMPT=16`` completions per prompt; the reward
(the majority label) sees all 16, then the first ``TTRL_N_SAMPLES_PER_PROMPT=8`` of each prompt are kept
for advantages and the loss; ``PPO_MINI_BATCH=32`` of 64 prompts makes two optimizer steps per step.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from weakreward import GRPOConfig, GRPOTrainer
from weakreward.grpo.config import majority_vote_overrides, paper_config
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rewards.base import Reward, RewardResult


class Recording(Reward):
    """Scores 1 for the first completion of each group, 0 otherwise; records what it saw."""

    name = "recording"

    def __init__(self):
        self.seen: list[tuple[int, list]] = []

    @property
    def sees_groups(self) -> bool:
        return True

    def compute(self, rollouts):
        self.seen.append((len(rollouts), list(rollouts.group_ids)))
        first = {}
        scores = [float(first.setdefault(g, i) == i) for i, g in enumerate(rollouts.group_ids)]
        return RewardResult(np.asarray(scores))


def test_trained_rows_are_the_first_group_size_of_each_prompt():
    cfg = paper_config(**majority_vote_overrides())
    rows = cfg.trained_rows(64)
    assert len(rows) == 64 * 8 and rows[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 16]
    assert cfg.mini_batches(64) == [slice(0, 256), slice(256, 512)]
    assert paper_config().mini_batches(64) == [slice(0, 512)]


def test_the_reward_sees_every_vote_and_the_loss_the_first_group_size(tmp_path):
    tok = char_tokenizer()
    cfg = GRPOConfig(
        steps=1,
        group_size=2,
        n_votes=3,
        prompts_per_step=2,
        mini_batch_prompts=1,
        max_new_tokens=4,
        lr=1e-3,
        beta=0.0,
        run_dir=str(tmp_path / "run"),
        progress=False,
    )
    reward = Recording()
    problems = [{"prompt": "1+1=", "answer": "2"}, {"prompt": "2+2=", "answer": "4"}]
    trainer = GRPOTrainer(tiny_llama(tok), reward, problems, tokenizer=tok, config=cfg)
    steps = []
    trainer.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    (metrics,) = trainer.train()
    assert reward.seen == [(6, ["1:0"] * 3 + ["1:1"] * 3)]
    # The trained rows are completions 0, 1 of prompt 0 and 3, 4 of prompt 1: scores [1, 0] in each group,
    # so advantages ±(1/2)/√(1/2) = ±0.7071 (ddof=1), mean 0.
    assert metrics["advantage/mean"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["advantage/abs_mean"] == pytest.approx(0.5 / (np.sqrt(0.5) + 1e-6), rel=1e-6)
    assert len(steps) == 2  # two mini-batches of one prompt: two optimizer steps
    assert "clip_frac_lower" in metrics


def test_bad_vote_and_mini_batch_settings_name_the_field():
    with pytest.raises(ValidationError, match="n_votes"):
        GRPOConfig(group_size=8, n_votes=4)
    with pytest.raises(ValidationError, match="mini_batch_prompts"):
        GRPOConfig(prompts_per_step=64, mini_batch_prompts=24)
