"""Item 5: advantages as verl's ``compute_grpo_outcome_advantage``: unbiased std (ddof=1) plus 1e-6, and a
group of one completion gets mean 0 and std 1. ``advantage_std_ddof=0`` keeps the population std."""

from __future__ import annotations

import math

import pytest

from weakreward.grpo.config import GRPOConfig, paper_config
from weakreward.grpo.loss import group_advantages


def test_group_of_four_by_hand():
    # [1, 0, 0, 0]: mean 1/4; unbiased std sqrt((9/16 + 3/16) / 3) = 1/2, population std sqrt(3)/4.
    ddof1 = group_advantages([1.0, 0.0, 0.0, 0.0], [0] * 4)
    ddof0 = group_advantages([1.0, 0.0, 0.0, 0.0], [0] * 4, ddof=0)
    assert ddof1.tolist() == pytest.approx([0.75 / (0.5 + 1e-6), *[-0.25 / (0.5 + 1e-6)] * 3], abs=1e-12)
    assert ddof0[0] == pytest.approx(0.75 / (math.sqrt(3) / 4 + 1e-6), abs=1e-12)


@pytest.mark.parametrize("g", [2, 4, 8, 16])
def test_population_std_inflates_advantages_by_sqrt_g_over_g_minus_one(g):
    scores = [1.0] * (g // 2) + [0.0] * (g - g // 2)
    ratio = group_advantages(scores, [0] * g, ddof=0, eps=0.0)[0] / group_advantages(scores, [0] * g, eps=0.0)[0]
    # 15% at G = 4, 7% at G = 8
    assert ratio == pytest.approx(math.sqrt(g / (g - 1)), rel=1e-12)


def test_a_lone_completion_keeps_its_reward_as_verl_does():
    # pair [1, 0]: mean 1/2, unbiased std sqrt(1/2); the lone 0.7: mean 0, std 1.
    assert group_advantages([0.7, 1.0, 0.0], ["solo", "pair", "pair"]).tolist() == pytest.approx(
        [0.7 / (1 + 1e-6), 0.5 / (math.sqrt(0.5) + 1e-6), -0.5 / (math.sqrt(0.5) + 1e-6)], abs=1e-12
    )
    assert group_advantages([0.7], ["solo"], ddof=0).tolist() == [0.0]


def test_config_defaults_and_the_option():
    assert GRPOConfig().advantage_std_ddof == 1 and paper_config().advantage_std_ddof == 1
    assert GRPOConfig(advantage_std_ddof=0).advantage_std_ddof == 0
    with pytest.raises(ValueError, match="advantage_std_ddof"):
        GRPOConfig(advantage_std_ddof=2)
