"""Picks the token-statistics implementation: the fused Triton kernel on CUDA, the plain-torch
reference elsewhere (CPU, or CUDA without Triton)."""

from __future__ import annotations

import functools

import torch

from weakreward.kernels.token_stats import reference_token_stats
from weakreward.rollouts import TokenStats


@functools.cache
def triton_available() -> bool:
    """True when Triton imports (it is an optional extra)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def token_stats(
    logits: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor | None, temperature: float
) -> TokenStats:
    """`token_stats_from_logits` (same arguments): the fused Triton kernel for CUDA logits when Triton is
    installed, else the plain-torch reference. Here ``mask`` and ``temperature`` have no defaults.

    Args: as `token_stats_from_logits`.
    """
    if logits.is_cuda and triton_available():
        from weakreward.kernels.fused_stats import fused_token_stats

        return fused_token_stats(logits, token_ids, mask, temperature)
    return reference_token_stats(logits, token_ids, mask, temperature)
