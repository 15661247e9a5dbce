"""`token_stats_from_logits` and its chunked reference against a naive float64 computation.

The oracle below is written independently of the library (log_softmax + autograd in float64); it checks
outputs *and* gradients of log-prob, entropy and self-certainty, masks, temperatures and odd shapes, and
that the chunked reference never holds more than one chunk of upcast logits.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from weakreward import TokenStats, token_stats_from_logits
from weakreward.kernels.token_stats import reference_token_stats


def naive_stats(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, temperature: float):
    """float64 oracle: ``[B, T]`` logprob, entropy, self-certainty, zero where ``mask`` is False."""
    z = logits.double() / temperature
    logp = torch.log_softmax(z, dim=-1)
    lp = logp.gather(-1, ids.clamp(0, z.shape[-1] - 1).long()[..., None]).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    # The release's units, KL(U ‖ p) + log V, with the KL written from its definition,
    # Σ_v (1/V) log((1/V) / p_v), not the closed form.
    v = z.shape[-1]
    sc = ((1.0 / v) * (math.log(1.0 / v) - logp)).sum(-1) + math.log(v)
    m = mask.double()
    return lp * m, ent * m, sc * m


def _inputs(shape, dtype=torch.float32, seed=0, scale=3.0, mask_p=0.8):
    g = torch.Generator().manual_seed(seed)
    b, t, v = shape
    logits = (torch.randn(b, t, v, generator=g, dtype=torch.float64) * scale).to(dtype)
    ids = torch.randint(0, v, (b, t), generator=g)
    mask = torch.rand(b, t, generator=g) < mask_p
    return logits, ids, mask


SHAPES = [(3, 17, 101), (1, 1, 2), (2, 5, 7), (4, 3, 1000), (1, 9, 49)]
DTYPES = [(torch.float64, 1e-10, 1e-10), (torch.float32, 2e-5, 2e-5), (torch.bfloat16, 2e-5, 2e-5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
@pytest.mark.parametrize("dtype,atol,rtol", DTYPES)
def test_outputs_match_float64_oracle(shape, temperature, dtype, atol, rtol):
    logits, ids, mask = _inputs(shape, dtype)
    ts = token_stats_from_logits(logits, ids, mask, temperature)
    # The oracle sees the same (already rounded) logits, so only the arithmetic differs.
    want = naive_stats(logits, ids, mask, temperature)
    for got, ref in zip((ts.logprobs, ts.entropy, ts.self_certainty), want):
        torch.testing.assert_close(got.double(), ref, atol=atol, rtol=rtol)
    assert ts.mask.dtype == torch.bool and torch.equal(ts.mask, mask)


@pytest.mark.parametrize(
    "dtype,want", [(torch.float64, torch.float64), (torch.float32, torch.float32), (torch.bfloat16, torch.float32)]
)
def test_output_dtype_is_upcast_not_the_input_dtype(dtype, want):
    logits, ids, mask = _inputs((2, 3, 11), dtype)
    ts = token_stats_from_logits(logits, ids, mask)
    assert ts.logprobs.dtype == ts.entropy.dtype == ts.self_certainty.dtype == want


def test_bf16_three_way_error_is_that_of_the_rounded_inputs():
    # Reference on bf16 logits vs the float32 reference on the unrounded logits: the gap must be no
    # larger than rounding the logits to bf16 explains (the oracle on the rounded logits agrees).
    logits32, ids, mask = _inputs((3, 17, 101), torch.float32, seed=3)
    bf = token_stats_from_logits(logits32.bfloat16(), ids, mask)
    fp = token_stats_from_logits(logits32, ids, mask)
    oracle_bf = naive_stats(logits32.bfloat16(), ids, mask, 1.0)
    for got, ref32, want in zip(
        (bf.logprobs, bf.entropy, bf.self_certainty), (fp.logprobs, fp.entropy, fp.self_certainty), oracle_bf
    ):
        torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=2e-5)
        rounding = (want - ref32.double()).abs().max()
        assert (got.double() - ref32.double()).abs().max() <= rounding + 2e-5


@pytest.mark.parametrize("shape", [(3, 17, 101), (2, 5, 7), (1, 1, 2)])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("dtype,atol,rtol", [(torch.float64, 1e-10, 1e-8), (torch.float32, 1e-5, 1e-4)])
def test_gradients_match_float64_oracle(shape, temperature, dtype, atol, rtol):
    logits, ids, mask = _inputs(shape, dtype, seed=1)
    g = torch.Generator().manual_seed(2)
    weights = [torch.randn(shape[:2], generator=g, dtype=torch.float64) for _ in range(3)]

    x = logits.clone().requires_grad_(True)
    ts = token_stats_from_logits(x, ids, mask, temperature)
    loss = sum((w.to(s.dtype) * s).sum() for w, s in zip(weights, (ts.logprobs, ts.entropy, ts.self_certainty)))
    loss.backward()

    ref = logits.double().requires_grad_(True)
    want = naive_stats(ref, ids, mask, temperature)
    sum((w * s).sum() for w, s in zip(weights, want)).backward()
    torch.testing.assert_close(x.grad.double(), ref.grad, atol=atol, rtol=rtol)
    assert x.grad.dtype == dtype
    # Positions outside the mask get exactly no gradient.
    assert torch.all(x.grad[~mask] == 0)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_gradient_of_each_statistic_alone(which):
    # Only one output used: the other two incoming gradients are None inside autograd.
    logits, ids, mask = _inputs((2, 6, 13), torch.float64, seed=4)
    x = logits.clone().requires_grad_(True)
    ts = token_stats_from_logits(x, ids, mask, 0.9)
    (ts.logprobs, ts.entropy, ts.self_certainty)[which].sum().backward()
    ref = logits.clone().requires_grad_(True)
    naive_stats(ref, ids, mask, 0.9)[which].sum().backward()
    torch.testing.assert_close(x.grad, ref.grad, atol=1e-10, rtol=1e-8)
    assert x.grad.abs().sum() > 0


def test_masked_vocabulary_entries_count_as_absent():
    """Logits of −inf (a masked vocabulary) give the log-prob and entropy of the distribution over the
    other tokens, and no gradient reaches them; NaN logits are not hidden."""
    logits, ids, mask = _inputs((2, 5, 11), torch.float64, seed=6)
    allowed = torch.ones(11, dtype=torch.bool)
    allowed[[0, 4, 10]] = False
    ids = torch.nonzero(allowed)[:, 0][ids % int(allowed.sum())]  # sampled tokens are allowed ones
    x = logits.masked_fill(~allowed, float("-inf")).requires_grad_(True)
    ts = reference_token_stats(x, ids, mask, 1.0, chunk_rows=3)
    (ts.logprobs.sum() + ts.entropy.sum()).backward()
    kept = logits[..., allowed].clone().requires_grad_(True)
    remap = torch.cumsum(allowed.long(), 0) - 1  # index among the allowed tokens
    lp, ent, _ = naive_stats(kept, remap[ids], mask, 1.0)
    (lp.sum() + ent.sum()).backward()
    torch.testing.assert_close(ts.logprobs, lp, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(ts.entropy, ent, atol=1e-10, rtol=1e-10)
    assert torch.equal(x.grad[..., ~allowed], torch.zeros_like(x.grad[..., ~allowed]))
    torch.testing.assert_close(x.grad[..., allowed], kept.grad, atol=1e-10, rtol=1e-8)
    poisoned = logits.clone()
    poisoned[0, 0, 3] = float("nan")
    assert reference_token_stats(poisoned, ids, None, 1.0).entropy[0, 0].isnan()


def test_gradcheck_of_the_chunked_function():
    logits, ids, mask = _inputs((2, 3, 5), torch.float64, seed=5)
    x = logits.clone().requires_grad_(True)

    def f(z):
        ts = reference_token_stats(z, ids, mask, temperature=1.3, chunk_rows=2)
        return ts.logprobs, ts.entropy, ts.self_certainty

    assert torch.autograd.gradcheck(f, (x,))


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 4),
    t=st.integers(1, 9),
    v=st.integers(2, 64),
    temperature=st.floats(0.3, 2.5),
    chunk_rows=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_chunked_reference_matches_oracle_for_any_shape_and_chunking(b, t, v, temperature, chunk_rows, seed):
    logits, ids, mask = _inputs((b, t, v), torch.float64, seed=seed)
    x = logits.clone().requires_grad_(True)
    ts = reference_token_stats(x, ids, mask, temperature, chunk_rows=chunk_rows)
    want = naive_stats(logits, ids, mask, temperature)
    for got, ref in zip((ts.logprobs, ts.entropy, ts.self_certainty), want):
        torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10)
    (ts.logprobs.sum() + ts.entropy.sum() + ts.self_certainty.sum()).backward()
    ref = logits.clone().requires_grad_(True)
    sum(s.sum() for s in naive_stats(ref, ids, mask, temperature)).backward()
    torch.testing.assert_close(x.grad, ref.grad, atol=1e-10, rtol=1e-8)


def test_known_values_for_uniform_and_peaked_distributions():
    v = 8
    logits = torch.zeros(1, 2, v)
    logits[0, 1, 3] = 100.0  # essentially one-hot on token 3
    ts = token_stats_from_logits(logits, torch.tensor([[5, 3]]))
    assert ts.logprobs[0, 0].item() == pytest.approx(-math.log(v), abs=1e-6)
    assert ts.entropy[0, 0].item() == pytest.approx(math.log(v), abs=1e-6)
    assert ts.self_certainty[0, 0].item() == pytest.approx(math.log(v), abs=1e-6)  # KL 0, plus log V
    assert ts.logprobs[0, 1].item() == pytest.approx(0.0, abs=1e-6)
    assert ts.entropy[0, 1].item() == pytest.approx(0.0, abs=1e-5)
    # lse − mean ≈ 100 − 100/V (the release's units; the KL is this minus log V).
    assert ts.self_certainty[0, 1].item() == pytest.approx(100 - 100 / v, rel=1e-5)


def test_padding_token_ids_outside_the_vocabulary_are_ignored_under_the_mask():
    logits, ids, mask = _inputs((2, 6, 11), torch.float32, seed=6)
    mask[:, -2:] = False
    bad = ids.clone()
    bad[:, -2:] = -100  # the usual ignore index at padding
    a = token_stats_from_logits(logits, bad, mask)
    b = token_stats_from_logits(logits, ids, mask)
    for x, y in zip((a.logprobs, a.entropy, a.self_certainty), (b.logprobs, b.entropy, b.self_certainty)):
        torch.testing.assert_close(x, y)
        assert torch.all(x[:, -2:] == 0)


def test_default_mask_is_all_tokens():
    logits, ids, _ = _inputs((2, 4, 9), torch.float64, seed=7)
    ts = token_stats_from_logits(logits, ids)
    assert bool(ts.mask.all())
    want = naive_stats(logits, ids, torch.ones(2, 4, dtype=torch.bool), 1.0)
    torch.testing.assert_close(ts.entropy, want[1])


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 1024])
def test_results_do_not_depend_on_chunk_rows(chunk_rows):
    logits, ids, mask = _inputs((3, 17, 101), torch.float32, seed=8)
    x = logits.clone().requires_grad_(True)
    ts = reference_token_stats(x, ids, mask, 0.8, chunk_rows=chunk_rows)
    (ts.logprobs.sum() - ts.entropy.sum() + ts.self_certainty.sum()).backward()
    y = logits.clone().requires_grad_(True)
    full = reference_token_stats(y, ids, mask, 0.8, chunk_rows=10_000)
    (full.logprobs.sum() - full.entropy.sum() + full.self_certainty.sum()).backward()
    for a, b in zip((ts.logprobs, ts.entropy, ts.self_certainty), (full.logprobs, full.entropy, full.self_certainty)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(x.grad, y.grad, atol=1e-7, rtol=1e-5)


class _LargestFloat32(TorchDispatchMode):
    """Records the largest float32 tensor any op produces while active."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float32:
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("chunk_rows", [4, 16])
def test_never_holds_more_than_one_chunk_of_float32_logits(chunk_rows):
    # bf16 logits are upcast to float32 one chunk at a time in the forward *and* the backward pass.
    b, t, v = 3, 20, 512
    logits, ids, mask = _inputs((b, t, v), torch.bfloat16, seed=9)
    x = logits.clone().requires_grad_(True)
    with _LargestFloat32() as fwd:
        ts = reference_token_stats(x, ids, mask, 0.9, chunk_rows=chunk_rows)
    loss = (ts.logprobs + ts.entropy + ts.self_certainty).sum()
    with _LargestFloat32() as bwd:
        loss.backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert 0 < fwd.largest <= chunk_rows * v
    assert 0 < bwd.largest <= chunk_rows * v
    # And the probe does see a whole float32 copy when there is a single chunk.
    with _LargestFloat32() as whole:
        reference_token_stats(logits, ids, mask, 0.9, chunk_rows=b * t)
    assert whole.largest >= b * t * v


def test_returns_token_stats_of_input_shape():
    logits, ids, mask = _inputs((3, 17, 101))
    ts = token_stats_from_logits(logits, ids, mask)
    assert isinstance(ts, TokenStats)
    assert ts.logprobs.shape == ts.entropy.shape == ts.self_certainty.shape == (3, 17)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"logits": torch.zeros(2, 3)}, "logits"),
        ({"token_ids": torch.zeros(2, 4, dtype=torch.long)}, "token_ids"),
        ({"mask": torch.ones(2, 2, dtype=torch.bool)}, "mask"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, field):
    args = {
        "logits": torch.zeros(2, 3, 5),
        "token_ids": torch.zeros(2, 3, dtype=torch.long),
        "mask": None,
        "temperature": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        token_stats_from_logits(**args)
