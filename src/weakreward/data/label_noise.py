"""Data-level label noise (arXiv 2604.18574 §4): corrupt a fraction of labels with plausible wrong answers.

`mine_wrong_answers` finds, per problem, the most frequent *incorrect* answer among a model's samples (the
paper: 96 samples at temperature 1.0); `corrupt_labels` replaces the label of exactly ``round(γ·n)``
problems by such an answer and keeps the true label in ``meta["original_answer"]`` (the released files'
``extra_info.original_ground_truth``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

import numpy as np

from weakreward._numbers import is_real
from weakreward.data.problem import Problem, as_problems
from weakreward.rewards.answer_clusters import cluster_answers, safe_compare
from weakreward.rewards.base import Verifier

K = TypeVar("K", bound=Hashable)

WrongAnswer = Union[Callable[[Problem], str | None], Mapping[Any, str | None]]
"""A wrong-answer source: ``callable(problem) -> str | None``, or a mapping keyed by position in the
problem list (int) or by `Problem.key` (the prompt's text key), such as `mine_wrong_answers` returns."""


def _norm(answer: Any) -> str | None:
    return None if answer is None else str(answer).strip()


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and _norm(a) == _norm(b)


def _lookup(source: WrongAnswer, position: int, problem: Problem) -> str | None:
    if isinstance(source, Mapping):
        if position in source:
            value = source[position]
        else:
            value = source.get(problem.key)
    else:
        value = source(problem)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"corrupt_labels: the wrong answer for problem {position} must be a str or None, got {type(value).__name__}"
        )
    return value if value.strip() else None


def corrupt_labels(
    problems: Sequence[Problem | Mapping[str, Any]],
    gamma: float,
    wrong_answer: WrongAnswer,
    *,
    seed: int = 0,
    on_missing: Literal["resample", "keep"] = "resample",
) -> list[Problem]:
    """Replace the label of ``round(γ·n)`` problems by a plausible wrong answer (the paper's label noise).

    arXiv 2604.18574 §4 builds its noisy sets (``sky_math_2048_gamma<γ>``) this way: a fraction γ of the
    training problems gets, as its label, the base model's most frequent wrong answer
    (`mine_wrong_answers`), so a corrupted problem rewards a mistake the model actually makes.

    Problems are visited in a seeded random order. ``on_missing`` says what happens to a visited problem
    that has no wrong answer (the source returns None, an empty string or the current label, or the
    problem is unlabeled):

    - ``"resample"`` (default): skip it and visit the next, so *exactly* ``round(γ·n)`` labels change
      (rounding half up); a ``ValueError`` when fewer problems than that have a wrong answer.
    - ``"keep"``: the first ``round(γ·n)`` visited problems are chosen whatever happens, and a chosen
      problem without a wrong answer keeps its label, so the realised fraction can fall below γ. This is
      what the released files show: 1838 changed labels for γ = 0.9 of 2048, not 1843 (measured fractions
      0.100, 0.299, 0.499, 0.699, 0.897).

    Every returned problem gets ``meta["original_answer"]`` (its true label; an existing value is kept,
    so corrupting a noisy set again still points at the truth) and ``meta["corrupted"]`` (bool).

    Args:
        problems: The clean problems (Problems, or mappings accepted by `Problem.from_dict`).
        gamma: Fraction of problems to corrupt, in ``[0, 1]``.
        wrong_answer: ``callable(problem) -> str | None``, or a mapping keyed by the problem's position
            (int) or `Problem.key` (str), e.g. the output of `mine_wrong_answers`.
        seed: Seed of the visiting order (a local ``numpy.random.Generator``).
        on_missing: ``"resample"`` or ``"keep"`` (see above).

    Returns:
        New `Problem` records in the input order; the inputs are not modified.

    Raises:
        ValueError: on ``gamma`` outside [0, 1], an unknown ``on_missing``, or (``"resample"``) too few
            problems with a wrong answer.

    Examples:
        >>> problems = [Problem(f"{i}+1?", str(i + 1)) for i in range(10)]
        >>> noisy = corrupt_labels(problems, 0.3, wrong_answer=lambda p: str(int(p.answer) + 100), seed=0)
        >>> sum(p.meta["corrupted"] for p in noisy), corrupted_fraction(noisy)
        (3, 0.3)
        >>> [p.meta["original_answer"] for p in noisy if p.meta["corrupted"]] == [
        ...     str(int(p.answer) - 100) for p in noisy if p.meta["corrupted"]]
        True
    """
    pool = as_problems(problems)
    if not is_real(gamma) or not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"corrupt_labels: gamma must be a fraction in [0, 1], got {gamma!r}")
    if on_missing not in ("resample", "keep"):
        raise ValueError(f"corrupt_labels: on_missing must be 'resample' or 'keep', got {on_missing!r}")
    if not (callable(wrong_answer) or isinstance(wrong_answer, Mapping)):
        raise TypeError(
            f"corrupt_labels: wrong_answer must be a callable or a mapping, got {type(wrong_answer).__name__}"
        )
    n = len(pool)
    target = math.floor(float(gamma) * n + 0.5)
    order = np.random.default_rng(seed).permutation(n).tolist()
    chosen: dict[int, str] = {}
    visited = 0
    for position in order:
        if on_missing == "keep" and visited == target:
            break
        if len(chosen) == target:
            break
        visited += 1
        problem = pool[position]
        wrong = _lookup(wrong_answer, position, problem) if problem.answer is not None else None
        if wrong is not None and not _same(wrong, problem.answer):
            chosen[position] = wrong
    if on_missing == "resample" and len(chosen) < target:
        raise ValueError(
            f"corrupt_labels: gamma={gamma} needs {target} of {n} problems with a wrong answer, but only "
            f"{len(chosen)} have one; lower gamma, supply more wrong answers, or pass on_missing='keep'"
        )
    out = []
    for position, problem in enumerate(pool):
        original = problem.meta.get("original_answer", problem.answer)
        if position in chosen:
            out.append(problem.with_answer(chosen[position], original_answer=original, corrupted=True))
        else:
            out.append(problem.with_answer(problem.answer, original_answer=original, corrupted=False))
    return out


def corrupted_fraction(problems: Sequence[Problem | Mapping[str, Any]]) -> float:
    """Fraction of problems whose label differs (as a stripped string) from ``meta["original_answer"]``.

    Problems without ``original_answer`` count as clean; this is how the released noisy files' fractions
    (0.100 ... 0.897) are measured.

    Examples:
        >>> corrupted_fraction([Problem("a", "1", meta={"original_answer": "2"}), Problem("b", "3")])
        0.5
    """
    pool = as_problems(problems)
    if not pool:
        return 0.0
    changed = sum("original_answer" in p.meta and _norm(p.answer) != _norm(p.meta["original_answer"]) for p in pool)
    return changed / len(pool)


def mine_wrong_answers(
    samples_by_problem: Mapping[K, Sequence[str]] | Sequence[Sequence[str]],
    verifier: Verifier,
    references: Mapping[K, str | Problem | None] | Sequence[str | Problem | None],
    *,
    extracted: bool = False,
) -> dict[Any, str | None]:
    """Each problem's most frequent *incorrect* answer among a model's samples (the paper's wrong labels).

    arXiv 2604.18574 §4 samples the base model 96 times at temperature 1.0 per problem and uses the most
    frequent wrong answer as the corrupted label. Here answers are extracted with ``verifier.extract``,
    clustered by the verifier's equivalence exactly as `MajorityVote` clusters them
    (`weakreward.rewards.answer_clusters.cluster_answers`: ``\\\\frac12``, ``0.5`` and ``1/2`` are one
    answer under `MathVerifier`, whatever the order of the samples), clusters with a member equivalent
    to the reference are dropped, and the largest remaining cluster wins (ties: the smaller label); its
    most frequent surface form (ties: the smaller string) is returned.

    A problem gets None when no sample has an incorrect answer (all correct or unparsable) or when its
    reference is None (nothing says which answers are wrong). `corrupt_labels` skips such problems.

    Args:
        samples_by_problem: Per problem, the sampled completions: a mapping ``key -> completions`` or a
            sequence (keys are then positions, which `corrupt_labels` understands).
        verifier: Extracts and compares answers (`Verifier.extract`, `Verifier.compare`).
        references: The true label per problem, keyed or ordered like ``samples_by_problem``; items may be
            strings, None, or `Problem` records (their ``answer`` is used).
        extracted: True when the samples are already answers, not completions (skips ``extract``).

    Returns:
        ``{key: wrong answer or None}`` for every problem.

    Examples:
        >>> from weakreward import ExactMatch
        >>> samples = [["\\\\boxed{4}", "\\\\boxed{5}", "\\\\boxed{5}", "\\\\boxed{3}"], ["\\\\boxed{1}"]]
        >>> mine_wrong_answers(samples, ExactMatch(), references=["4", "1"])
        {0: '5', 1: None}
    """
    items: list[tuple[Any, Sequence[str]]]
    if isinstance(samples_by_problem, Mapping):
        items = list(samples_by_problem.items())
    else:
        items = list(enumerate(samples_by_problem))
    if not isinstance(verifier, Verifier):
        raise TypeError(f"mine_wrong_answers: verifier must be a weakreward Verifier, got {type(verifier).__name__}")
    if not isinstance(references, Mapping) and len(references) != len(items):
        raise ValueError(f"mine_wrong_answers: {len(references)} references for {len(items)} problems")
    out: dict[Any, str | None] = {}
    for position, (key, samples) in enumerate(items):
        if isinstance(samples, str):
            raise TypeError(
                f"mine_wrong_answers: the samples of problem {key!r} must be a list of strings, not a string"
            )
        if isinstance(references, Mapping):
            if key not in references:
                raise ValueError(f"mine_wrong_answers: no reference for problem {key!r}")
            gold: Any = references[key]
        else:
            gold = references[position]
        if isinstance(gold, Problem):
            gold = gold.answer
        if gold is None:
            out[key] = None
            continue
        answers = [
            a for a in (samples if extracted else (verifier.extract(c) for c in samples)) if a is not None and a.strip()
        ]
        clusters = cluster_answers(answers, verifier)
        members = [m for c in clusters for m in c.members]
        matches = dict(zip(members, safe_compare(verifier, [str(gold)] * len(members), members)))
        wrong = [c for c in clusters if not any(matches[m] or _same(m, str(gold)) for m in c.members)]
        out[key] = wrong[0].label if wrong else None
    return out
