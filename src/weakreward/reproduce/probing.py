"""The probes of a policy before and after RL (arXiv 2604.18574 §4): judge-free faithfulness (arithmetic
claims, does the answer follow, early answering) and diversity (answer entropy, distinct-n, pass@k), on
samples of held-out problems."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from weakreward import Reward
from weakreward.data import Problem
from weakreward.probes.diversity import answer_entropy, distinct_n, pass_at_k
from weakreward.probes.faithfulness import early_answering, judge_free_checks

PROBE_COLUMNS = {
    "accuracy": "accuracy",
    "arithmetic": "arithmetic claims true",
    "answer_follows": "answer follows",
    "early_fixed": "answer fixed at 0% reasoning",
    "answer_entropy": "answer entropy (nats)",
    "distinct_2": "distinct-2",
}
"""The probe numbers the reports show, and their column titles."""


def _finite_mean(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def probe(
    model: Any, tokenizer: Any, held_out: Sequence[Problem], verifier: Reward, sizes: Any, *, seed: int
) -> dict[str, Any]:
    """Probe ``model`` on the first ``sizes.probe_problems`` held-out problems.

    Args:
        model: The policy (the starting model, or a trained one with its adapter).
        tokenizer: Its tokenizer.
        held_out: The held-out problems (true labels).
        verifier: The true verifier (pass@k, accuracy).
        sizes: A `weakreward.reproduce.runner.Sizes`.
        seed: Sampling seed.

    Returns:
        A JSON-ready dict: ``accuracy``, ``pass@k`` for k = 1, 2, 4 ... ≤ ``probe_samples``,
        ``answer_entropy`` (mean over problems), ``distinct_1`` / ``distinct_2`` (over all samples),
        ``arithmetic`` (mean fraction of true ``a op b = c`` claims, over samples with claims),
        ``answer_follows`` (does the answer follow from the last equation), ``early_answering`` (mean
        fraction of truncation points whose forced answer already matches) and ``early_fixed`` (fraction
        of responses whose answer is fixed before any reasoning), plus two example responses.
    """
    from weakreward.reproduce.runner import sample

    problems = list(held_out[: sizes.probe_problems])
    n = sizes.probe_samples
    samples = sample(model, tokenizer, [p.prompt for p in problems], n, max_new_tokens=sizes.max_new_tokens, seed=seed)
    flat = [c for group in samples for c in group]
    refs = [p.answer for p in problems for _ in range(n)]
    correct = verifier.score(flat, references=refs).scores
    per_problem = [int(np.nansum(correct[i * n : (i + 1) * n] > 0.5)) for i in range(len(problems))]
    out: dict[str, Any] = {"accuracy": float(np.nanmean(correct)) if len(flat) else math.nan}
    k = 1
    while k <= n:
        out[f"pass@{k}"] = float(np.mean([pass_at_k(n, c, k) for c in per_problem]))
        k *= 2
    out["answer_entropy"] = float(np.mean([answer_entropy(group) for group in samples]))
    out["distinct_1"] = distinct_n(flat, 1)
    out["distinct_2"] = distinct_n(flat, 2)

    checks = judge_free_checks(flat)
    out["arithmetic"] = _finite_mean(checks["arithmetic_score"])
    out["arithmetic_checked"] = float(np.mean([math.isfinite(s) for s in checks["arithmetic_score"]]))
    out["answer_follows"] = _finite_mean(checks["answer_follows"])

    # Early answering on one response per problem (the first that states an answer), greedy forced answers.
    chosen = []
    for problem, group in zip(problems, samples):
        text = next((c for c in group if "boxed" in c), None)
        if text is not None:
            chosen.append((problem.prompt, text))
    chosen = chosen[: sizes.early_answering]
    if chosen:
        results = early_answering(
            model,
            tokenizer,
            [p for p, _ in chosen],
            [t for _, t in chosen],
            fractions=(0.0, 0.5),
            max_new_tokens=sizes.max_new_tokens,
        )
        out["early_answering"] = _finite_mean([r.score for r in results])
        out["early_fixed"] = _finite_mean([float(r.matches[0]) if r.final is not None else math.nan for r in results])
    else:
        out["early_answering"] = math.nan
        out["early_fixed"] = math.nan
    out["examples"] = flat[:2]
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
