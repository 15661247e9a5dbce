"""ExactMatch: normalisation options, extraction fallback, config errors, pickling."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward import ExactMatch


def test_boxed_answer_matches_reference() -> None:
    r = ExactMatch().score([r"\boxed{4}", r"\boxed{5}", "4", ""], references=["4", "4", "4", "4"])
    assert r.scores.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert r.details["reason"] == ["match", "mismatch", "match", "no answer"]
    assert r.details["answer"][:2] == ["4", "5"]


def test_missing_reference_is_nan() -> None:
    r = ExactMatch().score([r"\boxed{4}"], references=[None])
    assert math.isnan(r.scores[0])
    assert r.details["reason"] == ["no reference"]


@pytest.mark.parametrize(
    ("options", "gold", "answer", "match"),
    [
        ({}, "Paris", r"$\text{Paris}$", True),
        ({"unwrap_latex": False}, "Paris", r"$\text{Paris}$", False),
        ({}, "Paris", "paris", False),
        ({"ignore_case": True}, "Paris", "PARIS", True),
        ({}, "1, 2", "1,   2", True),
        ({}, "1, 2", "1,2", False),
        ({"whitespace": "remove"}, "1, 2", "1,2", True),
        ({"whitespace": "keep"}, "1, 2", "1,  2", False),
        ({}, " 5 ", "5", True),
        ({"strip": False, "whitespace": "keep", "unwrap_latex": False}, " 5 ", "5", False),
    ],
)
def test_normalisation_options(options: dict, gold: str, answer: str, match: bool) -> None:
    assert ExactMatch(**options).compare([gold], [answer])[0].match is match


def test_without_fallback_an_unmarked_completion_has_no_answer() -> None:
    r = ExactMatch(whole_completion_fallback=False).score(["4"], references=["4"])
    assert r.scores.tolist() == [0.0]
    assert r.details["reason"] == ["no answer"]


@given(st.text(max_size=30), st.sampled_from(["keep", "collapse", "remove"]), st.booleans(), st.booleans())
def test_normalize_is_idempotent_and_reflexive(text: str, whitespace: str, ignore_case: bool, strip: bool) -> None:
    em = ExactMatch(whitespace=whitespace, ignore_case=ignore_case, strip=strip)
    once = em.normalize(text)
    assert em.normalize(once) == once
    assert em.compare([text], [text])[0].match


@given(st.text(max_size=20), st.text(max_size=20))
def test_compare_is_symmetric(a: str, b: str) -> None:
    em = ExactMatch(ignore_case=True)
    assert em.compare([a], [b])[0].match == em.compare([b], [a])[0].match


@pytest.mark.parametrize(("field", "value"), [("whitespace", "squash"), ("ignore_case", "yes"), ("strip", 1)])
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ExactMatch.{field}"):
        ExactMatch(**{field: value})


def test_pickle_round_trip() -> None:
    em = ExactMatch(ignore_case=True, whitespace="remove")
    copy = pickle.loads(pickle.dumps(em))
    assert (copy.ignore_case, copy.whitespace) == (True, "remove")
    assert copy.score([r"\boxed{A B}"], references=["ab"]).scores.tolist() == [1.0]
