"""corrupt_labels, corrupted_fraction and mine_wrong_answers, on synthetic problems and the paper's files."""

from __future__ import annotations

import gzip
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import Verdict, Verifier, corrupt_labels, mine_wrong_answers
from weakreward.data import Problem, corrupted_fraction
from weakreward.data.parquet import decode_ground_truth
from weakreward.rewards.answer_clusters import AnswerCluster, cluster_answers

LABELS = Path(__file__).parent.parent / "fixtures" / "verl" / "sky_math_2048_llama3b_labels.json.gz"
MEASURED = {"0.10": 0.100, "0.30": 0.299, "0.50": 0.499, "0.70": 0.699, "0.90": 0.897}  # the data README


class Rational(Verifier):
    """A small exact verifier for the tests: the last \\boxed{...}, equal as rationals (1/2 = 0.5 = \\frac12)."""

    name = "rational"

    def extract(self, completion: str) -> str | None:
        found = re.findall(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}", completion)
        return found[-1] if found else None

    @staticmethod
    def value(text: str) -> Fraction | None:
        text = text.strip()
        m = re.fullmatch(r"\\frac\{?(-?\d+)\}?\{?(\d+)\}?", text)
        try:
            return Fraction(int(m.group(1)), int(m.group(2))) if m else Fraction(text)
        except (ValueError, ZeroDivisionError):
            return None

    def compare(self, golds, answers):
        out = []
        for g, a in zip(golds, answers):
            gv, av = self.value(g), self.value(a)
            out.append(Verdict(gv is not None and gv == av, "match" if gv is not None and gv == av else "mismatch"))
        return out


def boxed(x: str) -> str:
    return f"so the answer is \\boxed{{{x}}}"


# -- corrupt_labels: invariants -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 60), gamma=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_exactly_round_gamma_n_labels_change_and_originals_are_kept(n, gamma, seed):
    problems = [Problem(f"q{i}", str(i)) for i in range(n)]
    noisy = corrupt_labels(problems, gamma, wrong_answer=lambda p: p.answer + "0", seed=seed)
    target = int(gamma * n + 0.5)
    changed = [i for i, (a, b) in enumerate(zip(problems, noisy)) if a.answer != b.answer]
    assert len(changed) == target
    assert corrupted_fraction(noisy) == (target / n if n else 0.0)
    assert all(noisy[i].answer == problems[i].answer + "0" for i in changed)
    assert [p.meta["original_answer"] for p in noisy] == [p.answer for p in problems]
    assert [p.meta["corrupted"] for p in noisy] == [i in changed for i in range(n)]
    assert [p.prompt for p in noisy] == [p.prompt for p in problems]
    assert all("original_answer" not in p.meta for p in problems)  # inputs untouched
    assert corrupt_labels(problems, gamma, wrong_answer=lambda p: p.answer + "0", seed=seed) == noisy


def test_rounding_is_half_up():
    problems = [Problem(f"q{i}", "1") for i in range(10)]
    assert sum(p.meta["corrupted"] for p in corrupt_labels(problems, 0.25, lambda p: "2")) == 3  # 2.5 -> 3
    assert sum(p.meta["corrupted"] for p in corrupt_labels(problems, 0.05, lambda p: "2")) == 1  # 0.5 -> 1


def test_seed_changes_which_problems_are_corrupted():
    problems = [Problem(f"q{i}", "1") for i in range(100)]
    a = [p.meta["corrupted"] for p in corrupt_labels(problems, 0.3, lambda p: "2", seed=0)]
    b = [p.meta["corrupted"] for p in corrupt_labels(problems, 0.3, lambda p: "2", seed=1)]
    assert a != b and sum(a) == sum(b) == 30


@settings(max_examples=30, deadline=None)
@given(available=st.lists(st.booleans(), min_size=1, max_size=40), gamma=st.floats(0, 1), seed=st.integers(0, 999))
def test_resample_skips_problems_without_a_wrong_answer(available, gamma, seed):
    problems = [Problem(f"q{i}", "1") for i in range(len(available))]
    mapping = {i: ("2" if ok else None) for i, ok in enumerate(available)}
    target = int(gamma * len(problems) + 0.5)
    if target > sum(available):
        with pytest.raises(
            ValueError,
            match=f"needs {target} of {len(problems)} problems with a wrong answer, but only {sum(available)}",
        ):
            corrupt_labels(problems, gamma, mapping, seed=seed)
        kept = corrupt_labels(problems, gamma, mapping, seed=seed, on_missing="keep")
        assert sum(p.meta["corrupted"] for p in kept) <= sum(available)
        return
    noisy = corrupt_labels(problems, gamma, mapping, seed=seed)
    assert sum(p.meta["corrupted"] for p in noisy) == target
    assert all(available[i] for i, p in enumerate(noisy) if p.meta["corrupted"])


@settings(max_examples=30, deadline=None)
@given(available=st.lists(st.booleans(), min_size=1, max_size=40), gamma=st.floats(0, 1), seed=st.integers(0, 999))
def test_keep_chooses_round_gamma_n_and_leaves_those_without_an_answer_alone(available, gamma, seed):
    problems = [Problem(f"q{i}", "1") for i in range(len(available))]
    mapping = {i: ("2" if ok else None) for i, ok in enumerate(available)}
    noisy = corrupt_labels(problems, gamma, mapping, seed=seed, on_missing="keep")
    everywhere = corrupt_labels(problems, gamma, {i: "2" for i in range(len(problems))}, seed=seed, on_missing="keep")
    chosen = {i for i, p in enumerate(everywhere) if p.meta["corrupted"]}
    # the same seed visits the same problems; only those with an answer change
    assert {i for i, p in enumerate(noisy) if p.meta["corrupted"]} == {i for i in chosen if available[i]}


def test_wrong_answers_equal_to_the_label_or_blank_count_as_missing():
    problems = [Problem("a", "5"), Problem("b", "5"), Problem("c", "5"), Problem("d", None)]
    mapping = {0: " 5 ", 1: "", 2: "6", 3: "7"}
    noisy = corrupt_labels(problems, 0.25, mapping)
    assert [p.answer for p in noisy] == ["5", "5", "6", None]
    with pytest.raises(ValueError, match="only 1 have one"):
        corrupt_labels(problems, 0.5, mapping)


def test_mapping_may_be_keyed_by_prompt_key():
    problems = [Problem([{"role": "user", "content": "x"}], "1"), Problem("y", "2")]
    noisy = corrupt_labels(problems, 1.0, {problems[0].key: "10", "y": "20"})
    assert [p.answer for p in noisy] == ["10", "20"]


def test_corrupting_a_noisy_set_again_keeps_the_true_label():
    problems = [Problem(f"q{i}", "1") for i in range(4)]
    once = corrupt_labels(problems, 1.0, lambda p: "2")
    twice = corrupt_labels(once, 1.0, lambda p: "3")
    assert [p.answer for p in twice] == ["3"] * 4
    assert [p.meta["original_answer"] for p in twice] == ["1"] * 4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"gamma": 1.5}, ValueError, "gamma must be a fraction"),
        ({"gamma": -0.1}, ValueError, "gamma must be a fraction"),
        ({"gamma": 0.5, "on_missing": "drop"}, ValueError, "on_missing"),
        ({"gamma": 0.5, "wrong_answer": 3}, TypeError, "wrong_answer must be a callable or a mapping"),
        ({"gamma": 0.5, "wrong_answer": lambda p: 3}, TypeError, "must be a str or None"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    kwargs.setdefault("wrong_answer", lambda p: "x")
    with pytest.raises(error, match=message):
        corrupt_labels([Problem("q", "1"), Problem("r", "2")], **kwargs)


# -- the paper's noisy files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper():
    with gzip.open(LABELS, "rt", encoding="utf-8") as f:
        labels = json.load(f)
    original = [decode_ground_truth(g)[0] for g in labels["original"]]
    wrong = {
        gamma: {int(i): decode_ground_truth(g)[0] for i, g in rows.items()} for gamma, rows in labels["noisy"].items()
    }
    clean = [Problem(f"problem {i}", answer) for i, answer in enumerate(original)]
    return clean, wrong


def test_corrupted_fraction_measures_the_paper_files_as_the_readme_says(paper):
    clean, wrong = paper
    assert len(clean) == 2048
    for gamma, measured in MEASURED.items():
        released = [p.with_answer(wrong[gamma].get(i, p.answer), original_answer=p.answer) for i, p in enumerate(clean)]
        assert round(corrupted_fraction(released), 3) == measured


@pytest.mark.parametrize("gamma", ["0.10", "0.30", "0.50", "0.70"])
def test_corrupt_labels_with_the_paper_wrong_answers_reproduces_the_measured_fraction(paper, gamma):
    clean, wrong = paper
    # the paper's wrong answer for this gamma where there is one, else its wrong answer for another gamma
    mapping = {i: a for other in wrong.values() for i, a in other.items()}
    mapping.update(wrong[gamma])
    noisy = corrupt_labels(clean, float(gamma), mapping, seed=0)
    fraction = corrupted_fraction(noisy)
    assert fraction == int(float(gamma) * 2048 + 0.5) / 2048
    # the paper lost 1-2 labels to problems without a wrong answer: within 0.003 of the measured value
    assert abs(fraction - MEASURED[gamma]) <= 0.003
    every = {}
    for other in wrong.values():
        for i, a in other.items():
            every.setdefault(i, set()).add(a)
    assert all(
        p.answer in every[i] and p.meta["original_answer"] == clean[i].answer
        for i, p in enumerate(noisy)
        if p.meta["corrupted"]
    )


def test_gamma_090_needs_one_more_wrong_answer_than_the_paper_released(paper):
    clean, wrong = paper
    mapping = {i: a for other in wrong.values() for i, a in other.items()}
    assert len(mapping) == 1842  # < round(0.9 * 2048) = 1843: exact-count corruption is impossible
    with pytest.raises(ValueError, match="needs 1843 of 2048 problems with a wrong answer, but only 1842"):
        corrupt_labels(clean, 0.9, mapping, seed=0)
    kept = corrupt_labels(clean, 0.9, wrong["0.90"], seed=0, on_missing="keep")
    assert corrupted_fraction(kept) < 0.9


# -- mine_wrong_answers -----------------------------------------------------------------------------


def test_most_frequent_incorrect_answer_clusters_equivalent_forms():
    samples = [
        [
            boxed("1/2"),
            boxed("3"),
            boxed("0.5"),
            boxed("\\frac12"),
            boxed("3"),
            boxed("0.75"),
            boxed("3/4"),
            boxed("0.75"),
        ],
        [boxed("1/2")] * 5 + ["no answer here"],
        ["nothing", "at all"],
        [boxed("7"), boxed("8")],
    ]
    got = mine_wrong_answers(samples, Rational(), references=["1/2", "0.5", "1", None])
    # 3 appears twice, 3/4 = 0.75 three times as one cluster, whose commonest form is 0.75
    assert got == {0: "0.75", 1: None, 2: None, 3: None}


def test_ties_break_by_the_smaller_answer_and_keys_are_kept():
    samples = {"a": [boxed("2"), boxed("3"), boxed("3"), boxed("2")], "b": [boxed("9"), boxed("4")]}
    assert mine_wrong_answers(samples, Rational(), references={"a": "1", "b": "4"}) == {"a": "2", "b": "9"}


def test_extracted_answers_and_problem_references():
    got = mine_wrong_answers([["2", "5", "5"]], Rational(), references=[Problem("q", "2")], extracted=True)
    assert got == {0: "5"}


def test_mined_answers_feed_corrupt_labels():
    problems = [Problem(f"{i}+{i}?", str(2 * i)) for i in range(6)]
    samples = [[boxed(str(2 * i)), boxed(str(2 * i + 1)), boxed(str(2 * i + 1))] for i in range(6)]
    mined = mine_wrong_answers(samples, Rational(), references=problems)
    noisy = corrupt_labels(problems, 0.5, mined, seed=2)
    assert sum(p.meta["corrupted"] for p in noisy) == 3
    assert all(int(p.answer) == int(p.meta["original_answer"]) + 1 for p in noisy if p.meta["corrupted"])


def test_a_failing_verifier_never_crashes_mining():
    class Broken(Rational):
        def compare(self, golds, answers):
            raise RuntimeError("boom")

    # nothing can be shown equal: every distinct answer is its own cluster and none is "correct"
    assert mine_wrong_answers([[boxed("1"), boxed("2"), boxed("2")]], Broken(), references=["1"]) == {0: "2"}
    # ...but an answer identical to the reference is never returned as wrong
    assert mine_wrong_answers([[boxed("1"), boxed("1")]], Broken(), references=["1"]) == {0: None}


def test_cluster_answers_counts_and_representatives():
    clusters = cluster_answers(["0.5", "1/2", "1/2", "2", " 2 "], Rational())
    assert clusters == [AnswerCluster("1/2", 3, ("0.5", "1/2")), AnswerCluster("2", 2, ("2",))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([["a"]], "not a verifier", ["1"]), "verifier must be a weakreward Verifier"),
        (([["a"]], Rational(), ["1", "2"]), "2 references for 1 problems"),
        (({"k": ["a"]}, Rational(), {"j": "1"}), "no reference for problem 'k'"),
        ((["abc"], Rational(), ["1"]), "must be a list of strings"),
    ],
)
def test_mine_bad_arguments(args, message):
    with pytest.raises((TypeError, ValueError), match=message):
        mine_wrong_answers(*args)


def test_with_math_verify():
    from weakreward import MathVerifier

    verifier = MathVerifier(workers=1)
    try:
        samples = [[boxed("\\frac12"), boxed("0.5"), boxed("3"), boxed("1/2"), boxed("3"), boxed("4")]]
        assert mine_wrong_answers(samples, verifier, references=["\\frac{2}{4}"]) == {0: "3"}
        samples = [[boxed("\\frac{1}{3}"), boxed("2"), boxed("1/3"), boxed("2.0"), boxed("0.3333")]]
        # {\frac{1}{3}, 1/3} and {2, 2.0} tie at two votes: the smaller label wins ("1/3" < "2"), and
        # within the cluster the smaller of the equally frequent forms ("1/3" < "\frac{1}{3}")
        assert mine_wrong_answers(samples, verifier, references=["5"]) == {0: "1/3"}
    finally:
        verifier.close()
