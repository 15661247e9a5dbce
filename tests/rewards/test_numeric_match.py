"""NumericMatch: number parsing without eval, and the tolerance laws."""

from __future__ import annotations

import math
import pickle
import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from weakreward import NumericMatch
from weakreward.rewards.numeric_match import parse_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42.0),
        ("-7", -7.0),
        ("+3", 3.0),
        ("−2", -2.0),
        ("3.25", 3.25),
        (".5", 0.5),
        ("1,234,567", 1234567.0),
        ("1{,}234", 1234.0),
        (r"1\,000", 1000.0),
        ("1.5e3", 1500.0),
        (r"2.5 \times 10^{-3}", 0.0025),
        ("3/4", 0.75),
        ("-3/4", -0.75),
        (r"\frac{3}{4}", 0.75),
        (r"-\frac{3}{4}", -0.75),
        (r"\dfrac34", 0.75),
        (r"\tfrac{1}{8}", 0.125),
        (r"\frac{-1}{2}", -0.5),
        (r"45\%", 45.0),
        ("45%", 45.0),
        (r"\$36", 36.0),
        (r"$12$", 12.0),
        (r"\text{12}", 12.0),
        (r"30^\circ", 30.0),
    ],
)
def test_parse_number_formats(text: str, value: float) -> None:
    assert parse_number(text) == pytest.approx(value)


def test_percent_as_fraction() -> None:
    assert parse_number("45%", percent="fraction") == pytest.approx(0.45)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1,2",
        "1,23",
        "1/0",
        "nan",
        "inf",
        "1e999",
        "1e999999999",
        "(1, 2)",
        "x + 1",
        "__import__('os').system('echo hacked')",
        "1+1",
        "2**10",
        r"\sqrt{2}",
        "9" * 500,
    ],
)
def test_parse_number_rejects_non_numbers(text: str) -> None:
    start = time.perf_counter()
    assert parse_number(text) is None
    assert time.perf_counter() - start < 1.0


def test_scores_and_reasons() -> None:
    nm = NumericMatch()
    r = nm.score(
        [r"\boxed{1,000}", "x = 0.75", r"\boxed{2}", "no numbers", r"\boxed{x}", r"\boxed{1}", "it is 3 then 7"],
        references=["1000", r"\frac34", "3", "1", "1", "one", "7"],
    )
    assert r.scores.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert r.details["reason"] == [
        "match",
        "match",
        "mismatch",
        "no answer",
        "not a number",
        "error: reference is not a number",
        "match",
    ]


def test_last_number_fallback_can_be_switched_off() -> None:
    r = NumericMatch(last_number_fallback=False).score(["it is 7"], references=["7"])
    assert r.details["reason"] == ["no answer"]


def test_missing_reference_is_nan() -> None:
    assert math.isnan(NumericMatch().score(["1"], references=[None]).scores[0])


_gold = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_rel = st.floats(min_value=1e-6, max_value=0.1)
_abs = st.floats(min_value=1e-6, max_value=1.0)


def _matches(nm: NumericMatch, gold: float, answer: float) -> bool:
    return nm.compare([repr(gold)], [repr(answer)])[0].match


@given(_gold, _rel, _abs)
def test_every_number_matches_itself(gold: float, rel: float, abs_: float) -> None:
    assert _matches(NumericMatch(rel_tol=rel, abs_tol=abs_), gold, gold)
    assert _matches(NumericMatch(rel_tol=0.0, abs_tol=0.0), gold, gold)


@given(_gold, _rel, _abs, st.floats(min_value=-0.5, max_value=0.5))
def test_within_half_the_tolerance_matches(gold: float, rel: float, abs_: float, frac: float) -> None:
    tol = abs_ + rel * abs(gold)
    assert _matches(NumericMatch(rel_tol=rel, abs_tol=abs_), gold, gold + frac * tol)


@given(_gold, _rel, _abs, st.floats(min_value=2.0, max_value=100.0), st.booleans())
def test_beyond_the_tolerance_does_not_match(gold: float, rel: float, abs_: float, factor: float, below: bool) -> None:
    tol = abs_ + rel * abs(gold)
    answer = gold - factor * tol if below else gold + factor * tol
    assert not _matches(NumericMatch(rel_tol=rel, abs_tol=abs_), gold, answer)


@given(_gold, _gold, _rel, _abs, _rel, _abs)
def test_a_looser_tolerance_keeps_every_match(
    gold: float, answer: float, r1: float, a1: float, r2: float, a2: float
) -> None:
    assume(r1 <= r2 and a1 <= a2)
    if _matches(NumericMatch(rel_tol=r1, abs_tol=a1), gold, answer):
        assert _matches(NumericMatch(rel_tol=r2, abs_tol=a2), gold, answer)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_thousands_separators_parse_to_the_integer(n: int) -> None:
    assert parse_number(f"{n:,}") == float(n)


@pytest.mark.parametrize(
    ("field", "value"),
    [("rel_tol", -1.0), ("abs_tol", float("nan")), ("percent", "ratio"), ("last_number_fallback", "no")],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"NumericMatch.{field}"):
        NumericMatch(**{field: value})


def test_pickle_round_trip() -> None:
    copy = pickle.loads(pickle.dumps(NumericMatch(rel_tol=0.01)))
    assert copy.rel_tol == 0.01
    assert copy.score([r"\boxed{101}"], references=["100"]).scores.tolist() == [1.0]
