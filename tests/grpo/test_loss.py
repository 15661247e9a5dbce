"""GRPO loss and advantages against a hand-written float64 reference (loops, no vectorisation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.grpo.evaluation import eval_metrics, pass_at_k
from weakreward.grpo.loss import aggregate, group_advantages, kl_penalty, policy_loss


# -- hand-written references ---------------------------------------------------------------------
def ref_advantages(scores, groups, norm, eps=1e-6, ddof=1):
    """GRPO advantages written out one completion at a time; ddof=1 is verl's (a lone completion: mean 0,
    std 1)."""
    out = []
    for i, s in enumerate(scores):
        if math.isnan(s):
            out.append(0.0)
            continue
        members = [scores[j] for j in range(len(scores)) if groups[j] == groups[i] and not math.isnan(scores[j])]
        if ddof == 1 and len(members) == 1:
            mean, std = 0.0, 1.0
        else:
            mean = sum(members) / len(members)
            std = math.sqrt(sum((x - mean) ** 2 for x in members) / (len(members) - ddof))
        if norm == "group":
            out.append((s - mean) / (std + eps))
        elif norm == "none":
            out.append(s - mean)
        else:
            valid = [x for x in scores if not math.isnan(x)]
            mb = sum(valid) / len(valid)
            sb = math.sqrt(sum((x - mb) ** 2 for x in valid) / (len(valid) - ddof))
            out.append((s - mean) / (sb + eps))
    return out


def ref_loss(lp, old, adv, mask, eps_lo, eps_hi, dual, ref, beta, agg, max_tokens):
    """Per-token PPO/GRPO loss written out one token at a time."""
    B, T = len(lp), len(lp[0])
    per_tok = [[0.0] * T for _ in range(B)]
    for i in range(B):
        for t in range(T):
            ratio = math.exp(lp[i][t] - old[i][t])
            a = adv[i]
            clipped_ratio = min(max(ratio, 1 - eps_lo), 1 + eps_hi)
            loss = max(-a * ratio, -a * clipped_ratio)
            if dual is not None and a < 0:
                loss = min(loss, -a * dual)
            if beta > 0:
                d = ref[i][t] - lp[i][t]
                loss += beta * (math.exp(d) - d - 1)
            per_tok[i][t] = loss
    if agg == "token-mean":
        n = sum(mask[i][t] for i in range(B) for t in range(T))
        return sum(per_tok[i][t] for i in range(B) for t in range(T) if mask[i][t]) / n
    if agg == "seq-mean-token-mean":
        total = 0.0
        for i in range(B):
            n_i = sum(mask[i])
            total += sum(per_tok[i][t] for t in range(T) if mask[i][t]) / n_i
        return total / B
    return sum(per_tok[i][t] for i in range(B) for t in range(T) if mask[i][t]) / (B * max_tokens)


def _batch(seed, B=4, T=5, spread=0.5):
    g = torch.Generator().manual_seed(seed)
    lp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2
    old = lp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 2 * spread
    ref = lp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5)
    adv = torch.tensor([1.5, -0.7, 0.3, -2.0], dtype=torch.float64)[:B]
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 3:] = False
    mask[3, 1:] = False
    return lp, old, ref, adv, mask


def _ref_grad(lp, old, adv, mask, kwargs, h=1e-6):
    """Central finite differences of the hand-written reference."""
    base = lp.tolist()
    grad = torch.zeros_like(lp)
    for i in range(lp.shape[0]):
        for t in range(lp.shape[1]):
            up = [row[:] for row in base]
            dn = [row[:] for row in base]
            up[i][t] += h
            dn[i][t] -= h
            f = lambda x: ref_loss(x, old.tolist(), adv.tolist(), mask.tolist(), **kwargs)  # noqa: E731
            grad[i, t] = (f(up) - f(dn)) / (2 * h)
    return grad


CASES = [
    # (agg, clip spread, eps_hi, dual, beta)
    ("token-mean", 0.01, 0.2, None, 0.0),  # ratios within [0.99, 1.01]: clipping inactive
    ("token-mean", 0.6, 0.2, None, 0.0),  # clipping active
    ("seq-mean-token-mean", 0.6, 0.28, None, 0.0),  # DAPO clip-higher
    ("dr-grpo", 0.6, 0.2, None, 0.0),
    ("token-mean", 1.5, 0.2, 1.5, 0.0),  # dual-clip active on negative advantages
    ("seq-mean-token-mean", 0.3, 0.2, 3.0, 0.1),  # KL k3 on
    ("dr-grpo", 0.3, 0.2, None, 0.5),
]


@pytest.mark.parametrize("agg,spread,eps_hi,dual,beta", CASES)
def test_policy_loss_matches_hand_written_reference_with_gradients(agg, spread, eps_hi, dual, beta):
    lp, old, ref, adv, mask = _batch(1, spread=spread)
    kwargs = dict(eps_lo=0.2, eps_hi=eps_hi, dual=dual, ref=ref.tolist(), beta=beta, agg=agg, max_tokens=7)
    expected = ref_loss(lp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), **kwargs)
    x = lp.clone().requires_grad_(True)
    out = policy_loss(
        x,
        old,
        adv,
        mask,
        clip_eps=0.2,
        clip_eps_high=eps_hi,
        dual_clip=dual,
        ref_logprobs=ref if beta > 0 else None,
        beta=beta,
        agg=agg,
        max_tokens=7,
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    out.loss.backward()
    torch.testing.assert_close(x.grad, _ref_grad(lp, old, adv, mask, kwargs), rtol=1e-5, atol=1e-7)
    assert (x.grad[~mask] == 0).all()


def test_clip_fraction_zero_when_inactive_and_positive_when_active():
    lp, old, _, adv, mask = _batch(2, spread=0.01)
    assert policy_loss(lp, old, adv, mask).clip_frac.item() == 0.0
    lp, old, _, adv, mask = _batch(2, spread=0.9)
    assert policy_loss(lp, old, adv, mask).clip_frac.item() > 0.0


def test_clipped_tokens_get_no_gradient():
    # A ratio far above 1 + eps with a positive advantage: the clipped branch is constant.
    lp = torch.tensor([[0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)
    out = policy_loss(lp, old, torch.tensor([1.0], dtype=torch.float64), torch.ones(1, 2, dtype=torch.bool))
    out.loss.backward()
    assert lp.grad[0, 0].item() == 0.0
    assert lp.grad[0, 1].item() == pytest.approx(-0.5)


def test_dual_clip_caps_negative_advantage_loss():
    lp = torch.tensor([[3.0]], dtype=torch.float64)
    old = torch.zeros(1, 1, dtype=torch.float64)
    adv = torch.tensor([-1.0], dtype=torch.float64)
    m = torch.ones(1, 1, dtype=torch.bool)
    plain = policy_loss(lp, old, adv, m).loss.item()
    capped = policy_loss(lp, old, adv, m, dual_clip=3.0).loss.item()
    assert plain == pytest.approx(math.exp(3.0))
    assert capped == pytest.approx(3.0)


def test_kl_k3_is_zero_at_equal_policies_and_positive_otherwise():
    lp = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
    assert kl_penalty(lp, lp).abs().max().item() == 0.0
    other = lp + torch.tensor([[0.3, -0.4, 1.0]], dtype=torch.float64)
    d = (other - lp)[0].tolist()
    expected = [math.exp(x) - x - 1 for x in d]
    assert kl_penalty(lp, other)[0].tolist() == pytest.approx(expected)
    assert (kl_penalty(lp, other) > 0).all()


def test_beta_without_reference_is_an_error():
    lp, old, _, adv, mask = _batch(3)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, old, adv, mask, beta=0.1)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "dr-grpo"])
def test_micro_batch_aggregation_sums_to_full_batch(mode):
    g = torch.Generator().manual_seed(5)
    per_tok = torch.rand(6, 4, generator=g, dtype=torch.float64)
    mask = torch.rand(6, 4, generator=g) > 0.3
    mask[:, 0] = True
    full = aggregate(per_tok, mask, mode, max_tokens=4)
    totals = dict(total_tokens=float(mask.sum()), total_seqs=6, max_tokens=4)
    parts = sum(aggregate(per_tok[s], mask[s], mode, **totals) for s in (slice(0, 2), slice(2, 6)))
    assert parts.item() == pytest.approx(full.item(), rel=1e-12)


@pytest.mark.parametrize("norm", ["group", "none", "batch"])
def test_advantages_match_reference(norm):
    scores = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, float("nan"), 1.0, 0.0]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    for ddof in (1, 0):
        got = group_advantages(scores, groups, norm, ddof=ddof)
        assert got.tolist() == pytest.approx(ref_advantages(scores, groups, norm, ddof=ddof))
        assert got[6] == 0.0  # the NaN score


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=8), st.integers(1, 4))
def test_group_advantages_sum_to_zero_per_group(values, n_groups):
    scores = np.asarray(values, dtype=np.float64)
    groups = [i % n_groups for i in range(len(values))]
    adv = group_advantages(scores, groups, "group")
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        if len(idx) == 1:  # verl: a lone completion has mean 0 and std 1
            assert adv[idx[0]] == pytest.approx(scores[idx[0]] / (1 + 1e-6))
            continue
        assert abs(adv[idx].sum()) < 1e-9
        if len(set(scores[idx])) == 1:
            assert (adv[idx] == 0).all()


def test_unknown_modes_are_rejected():
    with pytest.raises(ValueError, match="advantage_norm"):
        group_advantages([1.0, 0.0], [0, 0], "rank")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss_agg"):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool), "sum")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.data())
def test_pass_at_k_equals_binomial_formula(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    expected = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_eval_metrics_avg_and_pass_at_k():
    out = eval_metrics([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, float("nan"), 0.0]])
    assert out["avg@4"] == pytest.approx(3 / 12)
    assert out["pass@1"] == pytest.approx((1 / 4 + 0 + 2 / 4) / 3)
    assert out["pass@4"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
