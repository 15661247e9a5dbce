"""The LM-head-fused statistics against hidden @ weightᵀ followed by the float64 reference (interpreter
on the CPU; see conftest.py and the subprocess fallback at the bottom)."""

from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from weakreward.kernels.fused_linear_stats import fused_linear_token_stats  # noqa: E402
from weakreward.kernels.fused_stats import interpreter_active  # noqa: E402
from weakreward.kernels.token_stats import reference_token_stats  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RUNS_HERE = DEVICE == "cuda" or interpreter_active()
kernel = pytest.mark.skipif(
    not RUNS_HERE, reason="triton was imported without the interpreter; the subprocess test runs these"
)
STATS = ("logprobs", "entropy", "self_certainty")


def _case(b, t, c, v, seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, c, generator=g)
    weight = torch.randn(v, c, generator=g) / c**0.5 * 2
    ids = torch.randint(0, v, (b, t), generator=g)
    mask = torch.rand(b, t, generator=g) > 0.2
    weights = torch.randn(3, b, t, generator=g)
    return hidden, weight, ids, mask, weights


def _run(fn, hidden, weight, ids, mask, weights):
    h = hidden.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    ts = fn(h, w, ids, mask)
    sum((getattr(ts, n).double() * k.double()).sum() for n, k in zip(STATS, weights)).backward()
    return ts, h.grad, w.grad


def _reference(h, w, ids, mask):
    return reference_token_stats(h @ w.T, ids, mask, 0.8)


# (dtype, stats atol, grad atol): bf16 logits come from a bf16 matmul here and a float64 one in the
# reference, so bf16 differs by the rounding of z (~2^-8 relative of |z| ≤ ~6) and of the gradients.
@kernel
@pytest.mark.parametrize(
    ("dtype", "atol", "grad_atol"), [(torch.float32, 1e-4, 1e-4), (torch.bfloat16, 0.1, 0.15)], ids=["fp32", "bf16"]
)
@pytest.mark.parametrize("chunk_rows", [7, 4096])
def test_matches_reference_on_materialised_logits(dtype, atol, grad_atol, chunk_rows):
    hidden, weight, ids, mask, weights = _case(3, 11, 48, 1031, seed=chunk_rows)
    dev = [x.to(DEVICE) for x in (hidden.to(dtype), weight.to(dtype), ids, mask, weights)]
    got, got_h, got_w = _run(lambda h, w, i, m: fused_linear_token_stats(h, w, i, m, 0.8, chunk_rows=chunk_rows), *dev)
    ref, ref_h, ref_w = _run(_reference, hidden.to(dtype).double(), weight.to(dtype).double(), ids, mask, weights)
    for name in STATS:
        torch.testing.assert_close(getattr(got, name).detach().cpu().double(), getattr(ref, name), atol=atol, rtol=1e-3)
    assert got_h.dtype == dtype and got_w.dtype == dtype
    torch.testing.assert_close(got_h.cpu().double(), ref_h, atol=grad_atol, rtol=2e-2)
    torch.testing.assert_close(got_w.cpu().double(), ref_w, atol=grad_atol, rtol=2e-2)


@kernel
def test_chunking_does_not_change_results():
    hidden, weight, ids, mask, weights = _case(2, 9, 32, 300, seed=1)
    dev = [x.to(DEVICE) for x in (hidden, weight, ids, mask, weights)]
    a, a_h, a_w = _run(lambda h, w, i, m: fused_linear_token_stats(h, w, i, m, chunk_rows=5), *dev)
    b, b_h, b_w = _run(lambda h, w, i, m: fused_linear_token_stats(h, w, i, m, chunk_rows=1000), *dev)
    for name in STATS:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a_h, b_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a_w, b_w, atol=1e-5, rtol=1e-5)
    assert (a.logprobs[~mask.to(DEVICE)] == 0).all()


def test_rejects_mismatched_shapes():
    h, w = torch.zeros(1, 2, 4), torch.zeros(10, 4)
    ids = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="hidden must be"):
        fused_linear_token_stats(h[0], w, ids)
    with pytest.raises(ValueError, match="weight must be"):
        fused_linear_token_stats(h, torch.zeros(10, 5), ids)
    with pytest.raises(ValueError, match="chunk_rows"):
        fused_linear_token_stats(h, w, ids, chunk_rows=0)


def test_kernel_suite_in_interpreter_subprocess(rerun_in_interpreter):
    """When triton was imported (without the interpreter) before this module, rerun it in a fresh one."""
    if RUNS_HERE:
        pytest.skip("the kernel tests ran in this process")
    rerun_in_interpreter(str(Path(__file__)))
