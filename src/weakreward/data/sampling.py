"""`scarce`: the paper's scarce-data sampler (stratified round-robin over difficulty bins, then repetition)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from weakreward._numbers import is_int
from weakreward.data.problem import Problem, as_problems

DEFAULT_BINS: tuple[int, ...] = tuple(range(1, 16))
"""Solve@16 counts 1..15: problems the model solves sometimes but not always (0 and 16 carry no GRPO signal)."""


def scarce(
    problems: Sequence[Problem | Mapping[str, Any]],
    n: int,
    *,
    difficulty: str | None = None,
    seed: int = 0,
    repeat_to: int | None = None,
    bins: Sequence[int] = DEFAULT_BINS,
) -> list[Problem]:
    """Draw ``n`` distinct problems the way arXiv 2604.18574 builds its scarce-data sets, then repeat.

    With ``difficulty`` (a model name in `Problem.difficulty`, e.g. ``"Qwen2.5-Math-1.5B"``), the sampler
    is the paper's *stratified round-robin*: problems are binned by that model's solve@16 count, and each
    pass visits the bins in order (1, 2, ..., 15) taking one problem drawn at random without replacement
    from each bin that still has one, until ``n`` are taken. The first ``n mod |bins|`` bins of the last
    pass get one more problem than the rest, so every bin's count is within one of every other's as long
    as no bin runs dry (the released ``sky_math_64`` has 5 problems from bins 1-4 and 4 from bins 5-15).
    Problems whose count is outside ``bins`` or that have no entry for the model are not eligible.

    Without ``difficulty`` it is plain seeded sampling of ``n`` problems without replacement.

    With ``repeat_to`` larger than ``n``, the ``n`` problems are tiled in order until ``repeat_to`` rows
    (the paper fills a 64-prompt batch this way: ``sky_math_8`` is its 8 problems repeated 8 times). A
    ``repeat_to`` that ``n`` does not divide ends with a partial copy.

    Args:
        problems: The pool (Problems, or mappings accepted by `Problem.from_dict`).
        n: How many distinct problems to draw (> 0).
        difficulty: Stratify by this model's solve@16 count; None for plain sampling.
        seed: Seed of the sampler (a local ``numpy.random.Generator``; no global state).
        repeat_to: Tile the sample up to this many rows; None (or ≤ n) keeps ``n`` rows.
        bins: The difficulty values to stratify over, visited in this order.

    Returns:
        The drawn problems in draw order (round-robin order with ``difficulty``), tiled to ``repeat_to``.

    Raises:
        ValueError: when ``n`` exceeds the eligible pool, or no problem has the ``difficulty`` key (the
            message lists the keys that exist).

    Examples:
        >>> pool = [Problem(f"q{i}", str(i), difficulty={"m": 1 + i % 3}) for i in range(30)]
        >>> picked = scarce(pool, 6, difficulty="m", seed=0)
        >>> bins = [p.difficulty["m"] for p in picked]
        >>> bins
        [1, 2, 3, 1, 2, 3]
        >>> len(scarce(pool, 4, seed=0, repeat_to=10))
        10
    """
    pool = as_problems(problems)
    if not is_int(n) or n <= 0:
        raise ValueError(f"scarce: n must be a positive int, got {n!r}")
    if repeat_to is not None and (not is_int(repeat_to) or repeat_to <= 0):
        raise ValueError(f"scarce: repeat_to must be a positive int or None, got {repeat_to!r}")
    rng = np.random.default_rng(seed)
    if difficulty is None:
        if n > len(pool):
            raise ValueError(f"scarce: n={n} exceeds the {len(pool)} problems in the pool")
        picked = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
    else:
        picked = _round_robin(pool, n, difficulty, rng, tuple(bins))
    if repeat_to is not None and repeat_to > n:
        copies = -(-repeat_to // n)
        picked = (picked * copies)[:repeat_to]
    return picked


def _round_robin(
    pool: list[Problem], n: int, model: str, rng: np.random.Generator, bins: tuple[int, ...]
) -> list[Problem]:
    if not bins or len(set(bins)) != len(bins):
        raise ValueError(f"scarce: bins must be distinct values, got {bins!r}")
    if not any(model in p.difficulty for p in pool):
        known = sorted({k for p in pool for k in p.difficulty})
        raise ValueError(f"scarce: no problem has a difficulty for {model!r}; known models: {known}")
    members: dict[int, list[int]] = {b: [] for b in bins}
    for i, problem in enumerate(pool):
        value = problem.difficulty.get(model)
        if value in members:
            members[value].append(i)
    eligible = sum(len(v) for v in members.values())
    if n > eligible:
        raise ValueError(
            f"scarce: n={n} exceeds the {eligible} problems with {model!r} difficulty in bins {min(bins)}..{max(bins)}"
        )
    # One shuffled queue per bin; a pass pops one problem from each bin that still has one.
    queues = {b: [idx[j] for j in rng.permutation(len(idx))] for b, idx in members.items()}
    picked: list[Problem] = []
    while len(picked) < n:
        for b in bins:
            if queues[b] and len(picked) < n:
                picked.append(pool[queues[b].pop()])
    return picked
