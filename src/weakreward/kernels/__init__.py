"""Token statistics over the vocabulary (log-probs, entropy, self-certainty), each with a plain-torch
reference. Rollout engines live in `weakreward.rollout`.

`fused_token_stats` and `fused_linear_token_stats` (Triton) are imported on first use, so
``import weakreward`` never needs Triton.
"""

from typing import Any

from weakreward.kernels.token_stats import reference_token_stats, token_stats_from_logits

__all__ = [
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
    raise AttributeError(f"module 'weakreward.kernels' has no attribute {name!r}")
