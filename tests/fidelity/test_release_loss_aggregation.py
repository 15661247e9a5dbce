"""Item 8: verl's ``token-mean`` as verl computes it (per micro-batch, divided by the accumulation steps),
and the rest of the release's settings in `paper_config` and the recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from weakreward.grpo.config import paper_config
from weakreward.grpo.loss import aggregate

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_micro_token_mean_is_the_mean_of_micro_batch_token_means():
    # Two micro-batches: one completion of 1 token (loss 4), one of 3 tokens (losses 1, 1, 1).
    short, short_mask = torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([[True, False, False]])
    long, long_mask = torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([[True, True, True]])
    micro = sum(
        aggregate(x, m, "micro-token-mean", micro_batches=2) for x, m in ((short, short_mask), (long, long_mask))
    )
    # verl: (4/1)/2 + (3/3)/2 = 2.5; the global token mean is (4 + 3)/4 = 1.75.
    assert micro.item() == pytest.approx(2.5)
    glob = sum(aggregate(x, m, "token-mean", total_tokens=4.0) for x, m in ((short, short_mask), (long, long_mask)))
    assert glob.item() == pytest.approx(1.75)


def test_paper_config_is_the_release_train_sh():
    cfg = paper_config()
    assert (cfg.prompts_per_step, cfg.group_size, cfg.max_new_tokens) == (64, 8, 2048)
    assert (cfg.lr, cfg.lr_schedule, cfg.beta, cfg.kl_estimator, cfg.clip_eps) == (1e-6, "constant", 0.001, "k3", 0.2)
    assert (cfg.grad_clip, cfg.temperature, cfg.eval_every, cfg.save_every) == (1.0, 1.0, 25, 50)
    assert (cfg.loss_agg, cfg.micro_batch_size, cfg.dual_clip) == ("micro-token-mean", 8, 3.0)
    assert cfg.mini_batch_prompts is None and cfg.n_votes is None


@pytest.mark.parametrize("name", ["paper_scarce", "paper_noisy", "paper_majority_vote", "paper_self_certainty"])
def test_recipes_follow_the_release(name):
    recipe = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    grpo = recipe["grpo"]
    assert grpo["max_new_tokens"] == 2048 and grpo["loss_agg"] == "micro-token-mean"
    assert grpo["dual_clip"] == 3.0 and grpo["grad_clip"] == 1.0 and grpo["eval_every"] == 25
    assert grpo["micro_batch_size"] == 8 and grpo.get("advantage_std_ddof", 1) == 1
    if name in ("paper_majority_vote", "paper_self_certainty"):
        # The proxy-reward runs train on sky_math_1024 for 31 epochs (16 steps each): 496 steps.
        assert recipe["train_data"]["path"].endswith("sky_math_1024.parquet")
        assert grpo["steps"] == 496
    if name == "paper_majority_vote":
        assert (grpo["n_votes"], grpo["group_size"], grpo["mini_batch_prompts"]) == (16, 8, 32)
