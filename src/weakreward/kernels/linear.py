"""Float32 linear layers on the CPU through oneDNN, forward and backward (`onednn_linear`).

``F.linear`` on a float32 CPU tensor, and the two products of its backward, run Intel MKL's GEMM. On
the project's CPU (a 2-core AMD EPYC with AVX-512) MKL ran the forward and backward products of the
training forward at 190-205 GFLOP/s, oneDNN's matmul at 330-410 GFLOP/s on the same unpacked float32
operands (``bench/linear_cpu.py``: 1.7-2.0x per layer; a whole SmolLM2-135M forward + backward over
24 × 72 tokens in 5.9 s against 9.9 s).

`onednn_linear` is a context manager that routes every float32 CPU ``F.linear`` (so every
``nn.Linear``, Hugging Face's and peft's LoRA layers included) to an autograd function whose forward
and backward products run in oneDNN (``torch.ops.mkldnn._linear_pointwise``, the op Inductor's CPU
path uses): ``y = x Wᵀ + b``, ``∂x = ∂y W``, ``∂W = ∂yᵀ x``, ``∂b = Σ ∂y``. The results are the same
float32 products summed in another order (relative differences about 1e-6). Other dtypes, CUDA
tensors, autocast regions and a torch build without the op keep ``F.linear``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_PACKABLE_DTYPES = (torch.float32, torch.bfloat16)
_packed_linear_works: dict[torch.dtype, bool] = {}


def packed_linear_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether this torch build runs oneDNN's linear on the CPU in ``dtype`` (float32 or bfloat16).

    The op pair is ``torch.ops.mkldnn._reorder_linear_weight`` (a weight, once, in oneDNN's blocked
    layout) and ``torch.ops.mkldnn._linear_pointwise`` (the product, with a packed or a plain weight),
    which Inductor's CPU freezing uses; they are internal, so they are tried once on a 2×2 product and
    the answer is cached.

    Args:
        dtype: The compute dtype to try.

    Examples:
        >>> packed_linear_available(torch.float64)
        False
    """
    if dtype not in _PACKABLE_DTYPES:
        return False
    if dtype not in _packed_linear_works:
        try:
            eye = torch.eye(2, dtype=dtype)
            packed = torch.ops.mkldnn._reorder_linear_weight(eye)
            ones = torch.ones(1, 2, dtype=dtype)
            outs = [torch.ops.mkldnn._linear_pointwise(ones, w, None, "none", [], "") for w in (packed, eye)]
            _packed_linear_works[dtype] = all(bool(torch.equal(out.float(), torch.ones(1, 2))) for out in outs)
        except (AttributeError, RuntimeError):
            _packed_linear_works[dtype] = False
    return _packed_linear_works[dtype]


def bf16_matmul_native() -> bool:
    """True where oneDNN has native bfloat16 matmuls on this CPU (AVX512-BF16 or AMX).

    There a bfloat16 rollout (``GRPOConfig.rollout_dtype="bfloat16"``) reads half the bytes per decode step
    and runs about 1.5-2x faster; without them bfloat16 is emulated and slower than float32.

    Examples:
        >>> isinstance(bf16_matmul_native(), bool)
        True
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` in oneDNN (float32 or bfloat16 on the CPU, where `packed_linear_available`).

    Args:
        x: ``[..., in]``; a 2-D ``x`` may be a strided view (``a.t()``).
        weight: ``[out, in]``, possibly a strided view (``w.t()`` computes ``x @ w``) or packed by
            ``torch.ops.mkldnn._reorder_linear_weight``.
        bias: ``[out]`` or None.

    Returns:
        ``[..., out]``.
    """
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``F.linear`` with its forward and backward products in oneDNN (float32, CPU)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return product(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])  # [N, out]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = product(grad2, weight.t()).view(x.shape)  # ∂y W: W.t() is the [in, out] "weight"
        if ctx.needs_input_grad[1]:
            grad_w = product(grad2.t(), x.reshape(-1, x.shape[-1]).t())  # ∂yᵀ x, [out, in]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad2.sum(0)
        return grad_x, grad_w, grad_b


def _routable(x: Any, weight: Any, bias: Any) -> bool:
    tensors = [x, weight] + ([] if bias is None else [bias])
    return (
        # Plain tensors and parameters only: a tensor subclass (FakeTensor, DTensor, ...) keeps its own dispatch.
        all(type(t) in (torch.Tensor, torch.nn.Parameter) for t in tensors)
        and all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors)
        and weight.dim() == 2
        and (bias is None or bias.dim() == 1)
        and x.dim() >= 1
        and x.numel() > 0
        and x.shape[-1] == weight.shape[1]
        and not torch.is_autocast_enabled("cpu")
    )


class _LinearMode(TorchFunctionMode):
    """Sends float32 CPU ``F.linear`` calls to `_OneDNNLinear`; every other call runs as it is."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            x = args[0] if args else kwargs.get("input")
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if isinstance(x, torch.Tensor) and _routable(x, weight, bias):
                return _OneDNNLinear.apply(x.contiguous(), weight, bias)
        return func(*args, **kwargs)


@contextlib.contextmanager
def onednn_linear(enabled: bool = True) -> Iterator[bool]:
    """Route float32 CPU ``F.linear`` calls (forward and backward) to oneDNN inside the block.

    Args:
        enabled: False (or oneDNN's linear missing from this torch build) leaves ``F.linear`` alone.

    Yields:
        Whether the calls are routed.

    Examples:
        >>> layer = torch.nn.Linear(8, 4)
        >>> x = torch.randn(3, 8, requires_grad=True)
        >>> with onednn_linear() as routed:
        ...     y = layer(x)
        >>> y.backward(torch.ones_like(y))
        >>> torch.allclose(y, x @ layer.weight.T + layer.bias, atol=1e-5)
        True
        >>> torch.allclose(x.grad, torch.ones(3, 4) @ layer.weight, atol=1e-5)
        True
    """
    if not (enabled and packed_linear_available(torch.float32)):
        yield False
        return
    with _LinearMode():
        yield True
