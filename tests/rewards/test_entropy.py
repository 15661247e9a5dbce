"""TokenEntropy and TrajectoryEntropy against float64 references on random logits, odd shapes and masks."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from weakreward import Rollouts, TokenEntropy, TrajectoryEntropy, token_stats_from_logits


def oracles(logits, ids, mask, temperature):
    """Per completion: −mean token entropy, and mean log-prob of the sampled tokens (float64)."""
    z = logits.double() / temperature
    p = torch.softmax(z, -1)
    entropy = -(p * torch.log(p)).sum(-1)
    logprob = torch.log(p.gather(-1, ids[..., None]).squeeze(-1))
    neg_h, mean_lp = [], []
    for h, lp, m in zip(entropy, logprob, mask):
        neg_h.append(-h[m].mean().item() if m.any() else math.nan)
        mean_lp.append(lp[m].mean().item() if m.any() else math.nan)
    return np.array(neg_h), np.array(mean_lp)


def make(shape, dtype, temperature, seed):
    g = torch.Generator().manual_seed(seed)
    b, t, v = shape
    logits = (torch.randn(b, t, v, generator=g) * 2.0).to(dtype)
    ids = torch.randint(0, v, (b, t), generator=g)
    mask = torch.rand(b, t, generator=g) < 0.7
    mask[0] = False  # an empty completion
    ts = token_stats_from_logits(logits, ids, mask, temperature)
    return logits, ids, mask, Rollouts.build(["c"] * b, token_stats=ts)


@pytest.mark.parametrize("shape", [(3, 17, 101), (4, 1, 2), (2, 11, 777), (6, 5, 33)])
@pytest.mark.parametrize("temperature", [1.0, 1.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_both_match_float64_references(shape, temperature, dtype):
    logits, ids, mask, rollouts = make(shape, dtype, temperature, seed=shape[2])
    neg_h, mean_lp = oracles(logits, ids, mask, temperature)
    token = TokenEntropy()(rollouts)
    trajectory = TrajectoryEntropy()(rollouts)
    np.testing.assert_allclose(token.scores, neg_h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trajectory.scores, mean_lp, rtol=1e-5, atol=1e-5)
    # Empty completion: NaN with a reason, in both (the oracle says NaN too).
    assert math.isnan(token.scores[0]) and token.details["reason"][0] == "empty"
    assert math.isnan(trajectory.scores[0]) and trajectory.details["reason"][0] == "empty"
    finite = ~np.isnan(token.scores)
    assert (token.scores[finite] <= 1e-6).all() and (trajectory.scores[finite] <= 1e-6).all()
    assert (token.scores[finite] >= -math.log(shape[2]) - 1e-5).all()


def test_needs_name_the_statistic():
    assert TokenEntropy().needs == frozenset({"token_stats.entropy"})
    assert TrajectoryEntropy().needs == frozenset({"token_stats.logprobs"})


def test_one_hot_policy_scores_zero_and_uniform_scores_minus_log_v():
    v = 16
    logits = torch.zeros(2, 3, v)
    logits[1, :, 5] = 200.0
    ids = torch.full((2, 3), 5)
    rollouts = Rollouts.build(["u", "d"], token_stats=token_stats_from_logits(logits, ids))
    np.testing.assert_allclose(TokenEntropy()(rollouts).scores, [-math.log(v), 0.0], atol=1e-6)
    np.testing.assert_allclose(TrajectoryEntropy()(rollouts).scores, [-math.log(v), 0.0], atol=1e-6)


@pytest.mark.parametrize("cls", [TokenEntropy, TrajectoryEntropy])
def test_pickle_round_trip(cls):
    _, _, _, rollouts = make((3, 4, 9), torch.float32, 1.0, seed=1)
    copy = pickle.loads(pickle.dumps(cls()))
    np.testing.assert_array_equal(copy(rollouts).scores, cls()(rollouts).scores)
    assert copy == cls() and repr(copy) == f"{cls.__name__}(name={cls().name!r})"
