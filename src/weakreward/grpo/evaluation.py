"""Evaluation metrics over ``n`` samples per problem: avg@n and the unbiased pass@k estimator.

The defaults are those of the paper's released evaluation (``eval/pass_k_eval.py``): a sample is correct
when its score *equals 1*, pass@k is reported for k ∈ {1, 4, 8, 16}, and a problem with fewer than ``k``
samples is left out of that ``k``'s average (problems may have different sample counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weakreward.probes.diversity import pass_at_k

__all__ = ["PAPER_KS", "eval_metrics", "pass_at_k"]

PAPER_KS = (1, 4, 8, 16)
"""The k of pass@k that the paper's evaluation reports."""


def eval_metrics(
    scores_per_problem: Sequence[Sequence[float]],
    *,
    ks: Sequence[int] | None = PAPER_KS,
    threshold: float | None = None,
) -> dict[str, float]:
    """avg@n and pass@k from each problem's sample scores.

    Args:
        scores_per_problem: One list of scores per problem; problems may have different counts.
        ks: The k of pass@k. For each k, the mean over the problems with at least k samples; a k that
            no problem reaches is not reported. None: k = 1, 2, 4, … up to the largest count.
        threshold: None (default, the release's rule): a sample is correct when its score equals 1. A
            number: correct when the score exceeds it (e.g. 0.5 for fractional rewards). NaN scores are
            never correct.

    Returns:
        ``{"avg@n": ..., "pass@1": ..., ...}`` with ``n`` the largest sample count; ``avg@n`` is the mean
        over problems of each problem's mean score (NaN counts as 0).

    Examples:
        >>> eval_metrics([[1.0, 0.9, 0.0, 0.0]])  # 0.9 is not a correct sample: pass@1 = 1/4
        {'avg@4': 0.475, 'pass@1': 0.25, 'pass@4': 1.0}
        >>> eval_metrics([[1.0, 0.9, 0.0, 0.0]], threshold=0.5)["pass@1"]
        0.5
        >>> eval_metrics([[1.0, 0.0], [0.0, 0.0, 0.0, 1.0]], ks=None)
        {'avg@4': 0.375, 'pass@1': 0.375, 'pass@2': 0.75, 'pass@4': 1.0}
    """
    if not scores_per_problem:
        return {}
    rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in scores_per_problem]
    if any(len(r) == 0 for r in rows):
        raise ValueError("eval_metrics: every problem needs at least one sample score")
    n_max = max(len(r) for r in rows)
    out = {f"avg@{n_max}": float(np.mean([np.nan_to_num(r, nan=0.0).mean() for r in rows]))}
    if threshold is None:
        correct = [int((r == 1.0).sum()) for r in rows]
    else:
        correct = [int((np.nan_to_num(r, nan=-np.inf) > threshold).sum()) for r in rows]
    if ks is None:
        ks = [2**i for i in range(n_max.bit_length()) if 2**i <= n_max]
    for k in ks:
        if k < 1:
            raise ValueError(f"eval_metrics: every k must be >= 1, got {k}")
        values = [pass_at_k(len(r), c, k) for r, c in zip(rows, correct) if len(r) >= k]
        if values:
            out[f"pass@{k}"] = float(np.mean(values))
    return out
