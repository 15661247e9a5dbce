"""SelfCertainty against a float64 reference of KL(U ‖ p) on random logits, odd shapes and masks."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from weakreward import Rollouts, SelfCertainty, token_stats_from_logits


def kl_uniform_oracle(logits, mask, temperature):
    """Per completion, the mean over its tokens of KL(U ‖ softmax(z/τ)) = Σ_v (1/V) log((1/V) / p_v)."""
    z = logits.double() / temperature
    v = z.shape[-1]
    logp = torch.log_softmax(z, -1)
    kl = (-math.log(v) - logp).mean(-1)  # [B, T]
    out = []
    for row, m in zip(kl, mask):
        out.append(row[m].mean().item() if m.any() else math.nan)
    return np.array(out)


@pytest.mark.parametrize("shape", [(3, 17, 101), (5, 1, 2), (2, 9, 1000), (7, 4, 33)])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_matches_float64_reference(shape, temperature, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    b, t, v = shape
    logits = (torch.randn(b, t, v, generator=g) * 2.5).to(dtype)
    ids = torch.randint(0, v, (b, t), generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    mask = torch.arange(t)[None, :] < lengths[:, None]
    ts = token_stats_from_logits(logits, ids, mask, temperature)
    rollouts = Rollouts.build(["c"] * b, token_stats=ts)
    want = kl_uniform_oracle(logits, mask, temperature)
    # Default: the release's (and Intuitor's) units, logsumexp − mean = KL(U ‖ p) + log V.
    result = SelfCertainty()(rollouts)
    np.testing.assert_allclose(result.scores, want + math.log(v), rtol=1e-5, atol=1e-5)
    # vocab_size=V: the KL divergence itself.
    kl = SelfCertainty(vocab_size=v)(rollouts)
    np.testing.assert_allclose(kl.scores, want, rtol=1e-5, atol=1e-5)
    assert (kl.scores >= -1e-6).all()  # a KL divergence
    assert result.details["tokens"] == lengths.tolist()
    assert result.details["reason"] == ["ok"] * b


def test_more_peaked_distributions_score_higher():
    base = torch.randn(1, 5, 50, generator=torch.Generator().manual_seed(0))
    logits = torch.cat([base, 3 * base, 10 * base])
    ts = token_stats_from_logits(logits, torch.zeros(3, 5, dtype=torch.long))
    scores = SelfCertainty()(Rollouts.build(["a", "b", "c"], token_stats=ts)).scores
    assert scores[0] < scores[1] < scores[2]


def test_pickle_round_trip_keeps_the_reward_and_its_value():
    reward = pickle.loads(pickle.dumps(SelfCertainty()))
    assert isinstance(reward, SelfCertainty) and reward.needs == frozenset({"token_stats.self_certainty"})
    assert reward.name == "self_certainty"
    ts = token_stats_from_logits(torch.tensor([[[1.0, 0.0, -1.0]]]), torch.tensor([[0]]))
    # By hand, in the release's units: logsumexp(z) − mean(z) = log(e + 1 + 1/e) − 0 = log(4.0862) = 1.40761
    # (the KL form would subtract a further log 3 = 1.09861).
    assert reward(Rollouts.build(["x"], token_stats=ts)).scores.tolist() == pytest.approx([1.40761], abs=1e-5)
