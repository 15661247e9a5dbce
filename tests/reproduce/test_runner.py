"""The shared parts of `weakreward reproduce`: the held-out split, training sets, the true-label monitor,
run fingerprints, the scaled saturation parameters, the budget arithmetic, and the public-API rule."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from weakreward import ExactMatch, Rollouts, corrupt_labels
from weakreward.reproduce.runner import (
    FULL,
    SMOKE,
    RunSpec,
    Timing,
    TrueAccuracy,
    arithmetic_split,
    fingerprint,
    training_set,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "weakreward" / "reproduce"
PUBLIC = {
    "weakreward",
    "weakreward.data",
    "weakreward.dynamics",
    "weakreward.probes.faithfulness",
    "weakreward.probes.diversity",
    "weakreward.models",
}


def test_the_split_covers_every_distinct_problem_once_and_holds_out_a_fixed_set():
    pool, held_out = arithmetic_split(10, 40)
    # 10 x 10 additions, and subtractions a - b with a >= b: 55.
    assert len(pool) + len(held_out) == 155 and len(held_out) == 40
    assert not {p.key for p in pool} & {p.key for p in held_out}
    again_pool, again_held = arithmetic_split(10, 40)
    assert [p.key for p in again_held] == [p.key for p in held_out]
    for p in held_out:
        a, op, b = p.question.removeprefix("What is ").rstrip("?").split()
        assert int(p.answer) == (int(a) + int(b) if op == "+" else int(a) - int(b))


def test_a_held_out_set_as_large_as_the_task_is_refused():
    with pytest.raises(ValueError, match="no training problems"):
        arithmetic_split(2, 7)  # 4 additions + 3 subtractions


def test_a_small_training_set_is_repeated_to_fill_a_batch():
    pool, _ = arithmetic_split(10, 40)
    train = training_set(pool, 2, seed=0, batch=5)
    assert len(train) == 5 and len({p.key for p in train}) == 2
    assert len(training_set(pool, 16, seed=0, batch=4)) == 16


def test_the_true_monitor_scores_against_the_original_label_after_corruption():
    problems = [{"prompt": "What is 1 + 1?", "answer": "2"}, {"prompt": "What is 2 + 2?", "answer": "4"}]
    noisy = corrupt_labels(problems, 1.0, wrong_answer=lambda p: str(int(p.answer) + 1))
    rollouts = Rollouts.build(
        ["\\boxed{2}", "\\boxed{5}"],
        prompts=[p.prompt for p in noisy],
        references=[p.answer for p in noisy],
        original_answer=[p.meta["original_answer"] for p in noisy],
    )
    assert ExactMatch()(rollouts).scores.tolist() == [0.0, 1.0]  # against the wrong labels 3 and 5
    assert TrueAccuracy(ExactMatch())(rollouts).scores.tolist() == [1.0, 0.0]  # against 2 and 4


def test_the_true_monitor_uses_the_reference_without_corruption():
    rollouts = Rollouts.build(["\\boxed{2}"], references=["2"])
    assert TrueAccuracy(ExactMatch())(rollouts).scores.tolist() == [1.0]


def test_a_fingerprint_changes_with_anything_that_changes_the_run():
    pool, _ = arithmetic_split(10, 40)
    spec = RunSpec("n4-seed0", ExactMatch(), pool[:4], seed=0)
    base = fingerprint(spec, FULL, "m")
    assert fingerprint(spec, FULL, "m") == base
    assert fingerprint(dataclasses.replace(spec, seed=1), FULL, "m") != base
    assert fingerprint(dataclasses.replace(spec, train=pool[1:5]), FULL, "m") != base
    assert fingerprint(spec, dataclasses.replace(FULL, steps=41), "m") != base
    assert fingerprint(spec, FULL, "other") != base


def test_saturation_parameters_scale_the_papers_50_and_100_of_496_steps():
    sizes = dataclasses.replace(FULL, steps=496)
    assert (sizes.tail, sizes.rapid_before) == (50, 100)
    sizes = dataclasses.replace(FULL, steps=40)
    assert (sizes.tail, sizes.rapid_before) == (4, 8)  # 40·50/496 = 4.03, 40·100/496 = 8.06


def test_the_budget_adds_steps_evaluations_and_probes():
    timing = Timing(step_s=10, eval_s=4, probe_s=6, load_s=3, mining_s=50)
    sizes = dataclasses.replace(FULL, steps=12, eval_every=5)
    # evaluations at steps 0, 5, 10 and the last (12): 4
    assert timing.run_s(sizes) == 12 * 10 + 4 * 4 + 6
    assert timing.command_s(sizes, 3) == 3 * 142 + 6 + 3
    assert timing.command_s(sizes, 3, mining=True) == 3 * 142 + 6 + 3 + 50


def test_the_smoke_sizes_are_smaller_in_every_dimension_that_costs_time():
    for name in ("steps", "prompts_per_step", "group_size", "max_new_tokens", "eval_problems", "probe_problems"):
        assert getattr(SMOKE, name) < getattr(FULL, name), name


@pytest.mark.parametrize("path", sorted(SRC.glob("*.py")), ids=lambda p: p.name)
def test_the_reproduction_uses_only_the_public_api(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {m for m in imported if m.split(".")[0] == "weakreward" and not m.startswith("weakreward.reproduce")}
    assert ours <= PUBLIC, ours - PUBLIC
