"""Evaluation metrics over ``n`` samples per problem: avg@n and the unbiased pass@k estimator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, Codex).

    ``pass@k = 1 − C(n − c, k) / C(n, k)``, computed as the stable product
    ``1 − Π_{i = n − c + 1}^{n} (1 − k / i)`` (no large binomials).

    Args:
        n: Samples drawn for the problem.
        c: How many of them are correct (``0 ≤ c ≤ n``).
        k: The budget (``1 ≤ k ≤ n``).

    Returns:
        The probability that at least one of ``k`` samples drawn without replacement is correct.

    Examples:
        >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2)
        (0.25, 1.0, 0.0)
        >>> round(pass_at_k(5, 2, 2), 6)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        0.7
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def eval_metrics(scores_per_problem: Sequence[Sequence[float]], threshold: float = 0.5) -> dict[str, float]:
    """avg@n and pass@k (k = 1, 2, 4, … ≤ n) from each problem's ``n`` sample scores.

    A sample counts as correct for pass@k when its score exceeds ``threshold``; NaN scores count as wrong.

    Args:
        scores_per_problem: One list of ``n`` scores per problem (same ``n`` for all).
        threshold: Correctness threshold on the score.

    Returns:
        ``{"avg@n": ..., "pass@1": ..., "pass@2": ..., ...}``.

    Examples:
        >>> eval_metrics([[1.0, 0.0], [0.0, 0.0]])
        {'avg@2': 0.25, 'pass@1': 0.25, 'pass@2': 0.5}
    """
    if not scores_per_problem:
        return {}
    arr = np.asarray(scores_per_problem, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError("eval_metrics: every problem needs the same number of samples")
    n = arr.shape[1]
    out = {f"avg@{n}": float(np.nan_to_num(arr, nan=0.0).mean())}
    correct = (np.nan_to_num(arr, nan=-np.inf) > threshold).sum(axis=1)
    k = 1
    while k <= n:
        out[f"pass@{k}"] = float(np.mean([pass_at_k(n, int(c), k) for c in correct]))
        k *= 2
    return out
