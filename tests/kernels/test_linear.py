"""`onednn_linear`: float32 CPU linear layers in oneDNN, forward and backward, against float64 products.

The oracle is the float64 ``x Wᵀ + b`` and its gradients (``∂y W``, ``∂yᵀ x``, ``Σ ∂y``) written out
here; the routed float32 results must match it as closely as ``F.linear``'s own float32 results do.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.overrides import _get_current_function_mode_stack

from weakreward.kernels.linear import onednn_linear, packed_linear_available

needs_onednn = pytest.mark.skipif(not packed_linear_available(), reason="this torch has no oneDNN linear")


def _grad_fns(t: torch.Tensor) -> set[str]:
    """Names of the autograd nodes ``t`` was computed through."""
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return names


def _case(lead: tuple[int, ...], n_in: int, n_out: int, bias: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, n_in, generator=g, dtype=torch.float64)
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) / n_in**0.5
    b = torch.randn(n_out, generator=g, dtype=torch.float64) if bias else None
    grad = torch.randn(*lead, n_out, generator=g, dtype=torch.float64)
    return x, w, b, grad


def _oracle(x, w, b, grad):
    """float64 ``y = x Wᵀ + b`` and its gradients, from the formulas."""
    x2, g2 = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
    y = x @ w.T + (0 if b is None else b)
    return y, (g2 @ w).reshape(x.shape), g2.T @ x2, None if b is None else g2.sum(0)


def _float32_run(x, w, b, grad, routed: bool):
    xs = x.float().requires_grad_()
    ws = w.float().requires_grad_()
    bs = None if b is None else b.float().requires_grad_()
    with onednn_linear(routed) as on:
        y = F.linear(xs, ws, bs)
    assert on == (routed and packed_linear_available())
    y.backward(grad.float())
    return y.detach(), xs.grad, ws.grad, None if bs is None else bs.grad


@needs_onednn
@settings(max_examples=25, deadline=None)
@given(
    lead=st.sampled_from([(1,), (7,), (3, 5), (2, 1, 9), (37,)]),
    n_in=st.sampled_from([1, 8, 64, 257]),
    n_out=st.sampled_from([1, 16, 101]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_routed_products_and_gradients_match_the_float64_formulas(lead, n_in, n_out, bias, seed):
    x, w, b, grad = _case(lead, n_in, n_out, bias, seed)
    want = _oracle(x, w, b, grad)
    routed = _float32_run(x, w, b, grad, routed=True)
    plain = _float32_run(x, w, b, grad, routed=False)
    for got, base, ref in zip(routed, plain, want):
        if ref is None:
            assert got is None
            continue
        # As close to float64 as F.linear's float32 (MKL) results are, up to a small factor.
        scale = ref.abs().max().clamp(min=1.0)
        err, base_err = (
            float((got.double() - ref).abs().max() / scale),
            float((base.double() - ref).abs().max() / scale),
        )
        assert err <= max(4 * base_err, 1e-6), (err, base_err)


@needs_onednn
def test_a_frozen_weight_gets_no_gradient_and_a_strided_input_is_read_right():
    x, w, b, grad = _case((6, 4), 32, 24, True, 3)
    big = torch.zeros(6, 8, 32, dtype=torch.float64)
    big[:, ::2] = x  # the input as a strided view: every other row of a larger tensor
    xs = big.float()[:, ::2].requires_grad_()
    ws = w.float()  # frozen (LoRA's base layer)
    with onednn_linear():
        y = F.linear(xs, ws, b.float())
    assert "_OneDNNLinearBackward" in _grad_fns(y)
    y.backward(grad.float())
    ref_y, ref_gx, _, _ = _oracle(x, w, b, grad)
    torch.testing.assert_close(y.double(), ref_y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(xs.grad.double(), ref_gx, atol=1e-5, rtol=1e-5)
    assert ws.grad is None


@needs_onednn
def test_only_float32_cpu_products_outside_autocast_are_routed():
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)
    with onednn_linear():
        routed = layer(x)
        double = layer.double()(x.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = layer.float()(x)
    assert "_OneDNNLinearBackward" in _grad_fns(routed)
    assert "_OneDNNLinearBackward" not in _grad_fns(double)
    assert "_OneDNNLinearBackward" not in _grad_fns(autocast) and autocast.dtype == torch.bfloat16
    with onednn_linear(enabled=False) as on:
        off = layer(x)
    assert not on and "_OneDNNLinearBackward" not in _grad_fns(off)


def test_the_mode_is_left_when_the_block_raises():
    with pytest.raises(RuntimeError, match="inside"), onednn_linear():
        raise RuntimeError("inside")
    assert _get_current_function_mode_stack() == []


@needs_onednn
def test_a_peft_lora_model_trains_through_routed_products():
    """Every product of a LoRA model (base layers frozen, adapters trainable) is routed, and its
    adapter gradients equal the float64 model's."""
    from peft import LoraConfig, get_peft_model

    from weakreward.models import char_tokenizer, tiny_llama

    tok = char_tokenizer()
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(tiny_llama(tok, hidden_size=32), config)
    ids = torch.randint(4, len(tok), (3, 7), generator=torch.Generator().manual_seed(0))

    def adapter_grads(m, dtype, routed):
        m = m.to(dtype)
        m.zero_grad(set_to_none=True)
        with onednn_linear(routed):
            loss = m(input_ids=ids).logits.logsumexp(-1).mean()
        loss.backward()
        return loss, {n: p.grad.double() for n, p in m.named_parameters() if p.requires_grad}

    loss, got = adapter_grads(model, torch.float32, True)
    assert "_OneDNNLinearBackward" in _grad_fns(loss)
    _, want = adapter_grads(model, torch.float64, False)
    assert got.keys() == want.keys() and got
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4, msg=name)
