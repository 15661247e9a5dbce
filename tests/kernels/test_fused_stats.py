"""The fused Triton token-statistics kernel against the plain-torch reference, under Triton's interpreter.

``conftest.py`` switches the interpreter on before ``triton`` is imported. When another test imported
``triton`` first (without it), the kernel tests here skip and `test_kernel_suite_in_interpreter_subprocess`
runs this file again in a fresh interpreter-mode process instead.
"""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton")

from weakreward.kernels.fused_stats import fused_token_stats, interpreter_active  # noqa: E402
from weakreward.kernels.token_stats import reference_token_stats  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RUNS_HERE = DEVICE == "cuda" or interpreter_active()
kernel = pytest.mark.skipif(
    not RUNS_HERE, reason="triton was imported without the interpreter; the subprocess test runs these"
)
STATS = ("logprobs", "entropy", "self_certainty")

# (B, T, V): odd small shapes, a vocabulary just past a power of two (4099 = 2 × 2048 + 3, a ragged last
# block), and the real SmolLM2 vocabulary with few rows (the interpreter is slow).
SHAPES = [(2, 37, 1000), (3, 5, 4099), (1, 4, 49152)]
# (dtype, atol, rtol) for kernel outputs against the float64 reference on the same input values.
# float32: both accumulate in float32, so only summation order differs. bfloat16 inputs are exact in
# float32, so statistics are as accurate as float32's; the gradient is stored in bfloat16 (8 bits of
# mantissa, relative error 2^-8 ≈ 0.004) and gets the looser tolerance.
TOLERANCES = [
    (torch.float32, 1e-4, 1e-5, 1e-5, 1e-4),
    (torch.bfloat16, 1e-4, 1e-5, 2e-2, 8e-3),
]


def _inputs(shape, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    b, t, v = shape
    logits = torch.randn(b, t, v, generator=g) * scale
    ids = torch.randint(0, v, (b, t), generator=g)
    mask = torch.rand(b, t, generator=g) > 0.25
    mask[0, 0] = True
    weights = torch.randn(3, b, t, generator=g)
    return logits, ids, mask, weights


def _stats_and_grad(fn, logits, ids, mask, weights, temperature):
    z = logits.detach().clone().requires_grad_(True)
    ts = fn(z, ids, mask, temperature)
    loss = sum((getattr(ts, name).double() * w.double()).sum() for name, w in zip(STATS, weights))
    loss.backward()
    return ts, z.grad


@kernel
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("dtype", "atol", "rtol", "grad_atol", "grad_rtol"), TOLERANCES, ids=["fp32", "bf16"])
def test_kernel_matches_float64_reference_outputs_and_gradients(shape, dtype, atol, rtol, grad_atol, grad_rtol):
    logits, ids, mask, weights = _inputs(shape, seed=sum(shape))
    x = logits.to(dtype)
    temperature = 0.7
    got, got_grad = _stats_and_grad(
        fused_token_stats, x.to(DEVICE), ids.to(DEVICE), mask.to(DEVICE), weights.to(DEVICE), temperature
    )
    ref, ref_grad = _stats_and_grad(reference_token_stats, x.double(), ids, mask, weights, temperature)
    for name in STATS:
        assert getattr(got, name).dtype == torch.float32
        torch.testing.assert_close(getattr(got, name).cpu().double(), getattr(ref, name), atol=atol, rtol=rtol)
    assert got_grad.dtype == dtype
    torch.testing.assert_close(got_grad.cpu().double(), ref_grad, atol=grad_atol, rtol=grad_rtol)


def _neg_inf_logits(kind, logits, ids):
    """Logits with −inf entries as real pipelines produce them; ``ids`` moved onto finite entries."""
    z = logits.clone()
    v = z.shape[-1]
    if kind == "top_k":  # all but the 50 largest logits of each row masked
        kth = z.topk(50, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, -math.inf)
        ids = z.argmax(-1)
    elif kind == "padded_vocab":  # the last 37 columns are padding
        z[..., v - 37 :] = -math.inf
        ids = ids % (v - 37)
    elif kind == "one_finite":  # every row −inf but for one token (p is one-hot)
        keep = ids.clone()
        z = torch.full_like(z, -math.inf).scatter(-1, keep[..., None], z.gather(-1, keep[..., None]))
    return z, ids


@kernel
@pytest.mark.parametrize("kind", ["top_k", "padded_vocab", "one_finite"])
@pytest.mark.parametrize("shape", [(2, 37, 1000), (3, 5, 4099)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("dtype", "atol", "rtol", "grad_atol", "grad_rtol"), TOLERANCES, ids=["fp32", "bf16"])
def test_negative_infinite_logits_match_the_reference(kind, shape, dtype, atol, rtol, grad_atol, grad_rtol):
    logits, ids, mask, weights = _inputs(shape, seed=3)
    x, ids = _neg_inf_logits(kind, logits.to(dtype), ids)
    got, got_grad = _stats_and_grad(
        fused_token_stats, x.to(DEVICE), ids.to(DEVICE), mask.to(DEVICE), weights.to(DEVICE), 0.7
    )
    ref, ref_grad = _stats_and_grad(reference_token_stats, x.double(), ids, mask, weights, 0.7)
    # Entropy and log-probs stay finite; KL(U ‖ p) is +inf on every active row (p has zeros).
    assert torch.isfinite(got.entropy).all() and torch.isfinite(got.logprobs).all()
    assert torch.isinf(got.self_certainty[mask.to(DEVICE)]).all()
    assert torch.isfinite(got_grad).all()
    for name in STATS:
        torch.testing.assert_close(getattr(got, name).cpu().double(), getattr(ref, name), atol=atol, rtol=rtol)
    torch.testing.assert_close(got_grad.cpu().double(), ref_grad, atol=grad_atol, rtol=grad_rtol)
    if kind == "one_finite":  # a one-hot p: zero entropy, log-prob 0
        assert got.entropy.abs().max().item() < 1e-6
        assert got.logprobs.abs().max().item() < 1e-6


@kernel
@pytest.mark.parametrize("shape", [(2, 37, 1000), (1, 4, 49152)], ids=lambda s: "x".join(map(str, s)))
def test_three_way_bf16_kernel_is_as_close_to_fp32_reference_as_bf16_reference(shape):
    """Kernel-bf16 and reference-bf16 each against reference-fp32 (on the unrounded logits)."""
    logits, ids, mask, weights = _inputs(shape, seed=7)
    ref32, ref32_grad = _stats_and_grad(reference_token_stats, logits, ids, mask, weights, 1.0)
    ref16, ref16_grad = _stats_and_grad(reference_token_stats, logits.bfloat16(), ids, mask, weights, 1.0)
    ker16, ker16_grad = _stats_and_grad(
        fused_token_stats, logits.bfloat16().to(DEVICE), ids.to(DEVICE), mask.to(DEVICE), weights.to(DEVICE), 1.0
    )
    for name in STATS:
        ref_err = (getattr(ref16, name) - getattr(ref32, name)).abs().max().item()
        ker_err = (getattr(ker16, name).cpu() - getattr(ref32, name)).abs().max().item()
        # bf16 rounding of the logits dominates (~0.02 here); the kernel may not add to it materially.
        assert ref_err > 0
        assert ker_err <= 1.05 * ref_err + 1e-4, (name, ker_err, ref_err)
    ref_gerr = (ref16_grad.float() - ref32_grad).abs().max().item()
    ker_gerr = (ker16_grad.cpu().float() - ref32_grad).abs().max().item()
    assert ker_gerr <= 1.5 * ref_gerr + 1e-3, (ker_gerr, ref_gerr)


@kernel
def test_uniform_logits_give_log_vocab_entropy_and_certainty():
    """Uniform over V tokens → logp = −log V, H = log V, self-certainty lse − mean = log V (KL(U‖p) = 0)."""
    z = torch.zeros(1, 2, 4, device=DEVICE)
    ts = fused_token_stats(z, torch.tensor([[0, 3]], device=DEVICE))
    torch.testing.assert_close(ts.logprobs.cpu(), torch.full((1, 2), -math.log(4)))
    torch.testing.assert_close(ts.entropy.cpu(), torch.full((1, 2), math.log(4)))
    torch.testing.assert_close(ts.self_certainty.cpu(), torch.full((1, 2), math.log(4)), atol=1e-6, rtol=0)


@kernel
def test_masked_rows_are_zero_and_get_zero_gradient_even_with_nonfinite_logits():
    logits, ids, _, _ = _inputs((2, 3, 300), seed=3)
    logits[1, 2] = float("nan")  # a masked row may hold anything; it must not be read into the results
    mask = torch.tensor([[True, False, True], [True, True, False]])
    z = logits.to(DEVICE).requires_grad_(True)
    ts = fused_token_stats(z, ids.to(DEVICE), mask.to(DEVICE))
    (ts.logprobs.sum() + ts.entropy.sum() + ts.self_certainty.sum()).backward()
    for name in STATS:
        values = getattr(ts, name).cpu()
        assert torch.isfinite(values).all()
        assert (values[~mask] == 0).all()
        assert (values[mask] != 0).all()
    assert (z.grad.cpu()[~mask] == 0).all()
    assert torch.isfinite(z.grad).all()


@kernel
def test_strided_view_needs_no_copy_and_matches_contiguous():
    """``logits[:, :-1]`` (the usual shift) is read in place through its strides."""
    logits, ids, mask, _ = _inputs((2, 6, 515), seed=11)
    view = logits.to(DEVICE)[:, :-1]
    assert not view.is_contiguous()
    a = fused_token_stats(view, ids[:, :-1].to(DEVICE), mask[:, :-1].to(DEVICE), 1.3)
    b = reference_token_stats(view.contiguous().cpu().double(), ids[:, :-1], mask[:, :-1], 1.3)
    for name in STATS:
        torch.testing.assert_close(getattr(a, name).cpu().double(), getattr(b, name), atol=1e-4, rtol=1e-5)


@kernel
@settings(max_examples=12, deadline=None)
@given(
    b=st.integers(1, 3),
    t=st.integers(1, 4),
    v=st.integers(2, 700),
    temperature=st.floats(0.3, 2.0),
    scale=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**16),
)
def test_statistics_obey_their_bounds(b, t, v, temperature, scale, seed):
    """For every row: logp ≤ 0, 0 ≤ H ≤ log V, KL(U‖p) ≥ 0, and p summing to one makes
    Σ_v ∂logp_y/∂z_v = 0 (the gradient of a log-softmax is orthogonal to the all-ones direction)."""
    logits, ids, mask, _ = _inputs((b, t, v), seed, scale)
    z = logits.to(DEVICE).requires_grad_(True)
    ts = fused_token_stats(z, ids.to(DEVICE), mask.to(DEVICE), temperature)
    ts.logprobs.sum().backward()
    lp, ent, sc = (getattr(ts, name).cpu() for name in STATS)
    assert (lp <= 1e-5).all()
    assert (ent >= -1e-4).all() and (ent <= math.log(v) + 1e-4).all()
    assert (sc >= -1e-4).all()
    assert z.grad.sum(-1).abs().max().item() < 1e-4


def test_rejects_bad_shapes_and_temperature():
    z = torch.zeros(1, 2, 5)
    with pytest.raises(ValueError, match="logits must be"):
        fused_token_stats(z[0], torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="token_ids must be"):
        fused_token_stats(z, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="mask must be"):
        fused_token_stats(z, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="temperature"):
        fused_token_stats(z, torch.zeros(1, 2, dtype=torch.long), temperature=0.0)


def test_kernel_suite_in_interpreter_subprocess(rerun_in_interpreter):
    """When triton was imported (without the interpreter) before this module, rerun it in a fresh one."""
    if RUNS_HERE:
        pytest.skip("the kernel tests ran in this process")
    rerun_in_interpreter(str(Path(__file__)))
