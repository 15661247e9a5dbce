"""Token statistics over the vocabulary and fast rollout engines, each with a plain-torch reference."""

from weakreward.kernels.token_stats import reference_token_stats, token_stats_from_logits

__all__ = ["reference_token_stats", "token_stats_from_logits"]
