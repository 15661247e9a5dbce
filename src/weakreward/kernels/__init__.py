"""Token statistics over the vocabulary and fast rollout engines, each with a plain-torch reference.

`fused_token_stats`, `fused_linear_token_stats` (Triton) and `CudaGraphEngine` are imported on first
use, so ``import weakreward`` never needs Triton.
"""

from typing import Any

from weakreward.kernels.token_stats import reference_token_stats, token_stats_from_logits

__all__ = [
    "CudaGraphEngine",
    "fused_linear_token_stats",
    "fused_token_stats",
    "reference_token_stats",
    "token_stats_from_logits",
]


def __getattr__(name: str) -> Any:
    if name == "fused_token_stats":
        from weakreward.kernels.fused_stats import fused_token_stats

        return fused_token_stats
    if name == "fused_linear_token_stats":
        from weakreward.kernels.fused_linear_stats import fused_linear_token_stats

        return fused_linear_token_stats
    if name == "CudaGraphEngine":
        from weakreward.kernels.cuda_graph_engine import CudaGraphEngine

        return CudaGraphEngine
    raise AttributeError(f"module 'weakreward.kernels' has no attribute {name!r}")
