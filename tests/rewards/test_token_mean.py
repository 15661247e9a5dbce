"""Shared behaviour of the token-statistic rewards: masking, empty and non-finite completions, needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weakreward import Rollouts, SelfCertainty, TokenEntropy, TokenStats, TrajectoryEntropy, WeightedSum

REWARDS = [SelfCertainty, TokenEntropy, TrajectoryEntropy]


@pytest.mark.parametrize("cls", REWARDS)
def test_without_token_stats_raises_pointing_to_token_stats_from_logits(cls):
    with pytest.raises(ValueError, match="token_stats_from_logits"):
        cls().score(["abc"])


@pytest.mark.parametrize("cls", REWARDS)
def test_padding_values_are_ignored_even_when_nan(cls):
    ts = TokenStats.from_ragged([[-1.0, -3.0], [-2.0]], [[1.0, 3.0], [2.0]], [[0.5, 1.5], [1.0]])
    poisoned = TokenStats(
        logprobs=torch.where(ts.mask, ts.logprobs, torch.tensor(float("nan"))),
        entropy=torch.where(ts.mask, ts.entropy, torch.tensor(float("inf"))),
        self_certainty=torch.where(ts.mask, ts.self_certainty, torch.tensor(float("nan"))),
        mask=ts.mask,
    )
    clean = cls()(Rollouts.build(["ab", "c"], token_stats=ts))
    dirty = cls()(Rollouts.build(["ab", "c"], token_stats=poisoned))
    np.testing.assert_array_equal(clean.scores, dirty.scores)
    assert dirty.details["reason"] == ["ok", "ok"]
    assert dirty.details["tokens"] == [2, 1]


def test_values_are_the_signed_token_means():
    ts = TokenStats.from_ragged([[-1.0, -3.0], [-2.0]], [[1.0, 3.0], [2.0]], [[0.5, 1.5], [1.0]])
    rollouts = Rollouts.build(["ab", "c"], token_stats=ts)
    assert SelfCertainty()(rollouts).scores.tolist() == [1.0, 1.0]
    assert TokenEntropy()(rollouts).scores.tolist() == [-2.0, -2.0]
    assert TrajectoryEntropy()(rollouts).scores.tolist() == [-2.0, -2.0]


@pytest.mark.parametrize("cls", REWARDS)
def test_empty_and_non_finite_completions_are_nan_with_a_reason(cls):
    ts = TokenStats.from_ragged(
        [[], [float("nan"), -1.0], [-1.0]], [[], [float("nan"), 1.0], [1.0]], [[], [float("nan"), 1.0], [1.0]]
    )
    result = cls()(Rollouts.build(["", "xy", "z"], token_stats=ts))
    assert math.isnan(result.scores[0]) and math.isnan(result.scores[1]) and not math.isnan(result.scores[2])
    assert result.details["reason"] == ["empty", "non-finite", "ok"]
    assert result.log()["nan_frac"] == pytest.approx(2 / 3)


def test_composes_with_needs_unioned():
    reward = SelfCertainty() - 0.1 * TokenEntropy()
    assert isinstance(reward, WeightedSum)
    assert reward.needs == frozenset({"token_stats.self_certainty", "token_stats.entropy"})
    ts = TokenStats.from_ragged([[-1.0]], [[2.0]], [[0.5]])
    assert reward(Rollouts.build(["a"], token_stats=ts)).scores.tolist() == pytest.approx([0.5 + 0.1 * 2.0])


def test_gradients_in_token_stats_do_not_leak():
    ts = TokenStats.from_ragged([[-1.0, -0.5]], [[1.0, 0.5]], [[0.2, 0.4]])
    grad_ts = TokenStats(ts.logprobs.requires_grad_(True), ts.entropy, ts.self_certainty, ts.mask)
    result = TrajectoryEntropy()(Rollouts.build(["ab"], token_stats=grad_ts))
    assert result.scores.dtype == np.float64 and result.scores.tolist() == [-0.75]
