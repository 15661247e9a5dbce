"""The judge-free arithmetic checker: planted wrong steps are flagged, correct derivations pass, and
hostile input returns quickly."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.probes.arithmetic import check_arithmetic, evaluate_arithmetic

CORRECT = r"""Natalia sold 48 clips in April and half as many in May.
In May she sold 48 / 2 = 24 clips.
Altogether she sold $48 + 24 = 72$ clips, i.e. 72 = 8 \times 9.
As a fraction of 96: \frac{72}{96} = \frac{3}{4} = 0.75.
So the answer is \boxed{72}."""


def test_correct_derivation_passes():
    check = check_arithmetic(CORRECT)
    assert len(check.claims) == 5
    assert check.false_claims == []
    assert check.score == 1.0 and check.reason == "all 5 claims hold"


def test_planted_wrong_step_is_flagged_and_only_it():
    planted = CORRECT.replace("48 + 24 = 72", "48 + 24 = 82")
    check = check_arithmetic(planted)
    assert [str(c) for c in check.false_claims] == ["48 + 24 = 82"]
    assert check.score == pytest.approx(4 / 5)
    assert "false" in check.reason


def test_chain_links_are_checked_pairwise():
    check = check_arithmetic("We get 2 + 3 = 5 = 6 - 1 = 4.")
    assert [c.correct for c in check.claims] == [True, True, False]
    assert str(check.false_claims[0]) == "6 - 1 = 4"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("12 × 4 = 48", True),
        ("12 · 4 = 48", True),
        ("12 * 4 = 49", False),
        ("84 ÷ 4 = 21", True),
        ("2^10 = 1024", True),
        ("2^{10} = 1000", False),
        ("(3 + 4)(2) = 14", True),
        ("2(3 + 4) = 15", False),
        ("1.5 + 2.25 = 3.75", True),
        ("\\frac{1}{3} + \\frac{1}{6} = \\frac{1}{2}", True),
        ("10 / 4 = 2.5", True),
        ("−3 + 5 = 2", True),
        ("1,000 + 250 = 1,250", True),
        ("10/3 = 3.33", True),
        ("2/3 = 0.66", True),
        ("10/3 = 3.4", False),
        ("2^0.5 ≈ 1.41", True),
        ("22/7 \\approx 3.14", True),
        ("100/3 = 33", False),
        ("7 \\div 2 = 3.5", True),
        ("3 \\cdot 4 = 12 apples", True),
        ("2 + 2 = \\boxed{5}", False),
    ],
)
def test_operator_forms(text, ok):
    check = check_arithmetic(text)
    assert len(check.claims) == 1, check.claims
    assert check.claims[0].correct is ok


@pytest.mark.parametrize(
    "text",
    [
        "Let 3x + 2 = 11",
        "x^2 = 4",
        "\\sqrt{4} = 2",
        "50% of 80 = 40",
        "0.5 = 50%",
        "The area is 3 * 4 = 12cm",
        "1 = 1",
        "a = b + c",
        "f(2) = 5",
        "no maths here",
        "",
    ],
)
def test_non_arithmetic_equations_are_not_claims(text):
    assert check_arithmetic(text).claims == []
    assert math.isnan(check_arithmetic(text).score)


def test_division_by_zero_is_unchecked_not_false():
    check = check_arithmetic("1/0 = 5")
    assert [c.correct for c in check.claims] == [None]
    assert "division by zero" in check.claims[0].reason and math.isnan(check.score)


@pytest.mark.parametrize(
    "text",
    [
        "9^9^9^9 = 1",
        "2^-99999999 = 0",
        "(" * 5000 + "1" + ")" * 5000 + " = 1",
        "-" * 20000 + "1 = 1",
        "1+" * 40000 + "1 = 2",
        ("123456789012345678901234567890^999 = 1\n") * 300,
        "((((2^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2)^2 = 4",
        "9" * 100_000 + " = 9",
        "(2^(1/3))^(1/5)^(1/7) = 3",
        "2=" * 30000,
    ],
)
def test_hostile_input_returns_quickly(text):
    start = time.perf_counter()
    check = check_arithmetic(text)
    assert time.perf_counter() - start < 2.0
    assert all(c.correct in (True, False, None) for c in check.claims)


def test_huge_power_is_reported_as_unchecked():
    [claim] = check_arithmetic("9^9^9^9 = 1").claims
    assert claim.correct is None and "too large" in claim.reason


def test_evaluate_arithmetic_rejects_code():
    for bad in ("__import__('os')", "2 + x", "lambda: 1", "1 if 2 else 3", "2 ** 3; 4"):
        with pytest.raises(ValueError):
            evaluate_arithmetic(bad)


@settings(max_examples=150, deadline=None)
@given(st.integers(-999, 999), st.integers(-999, 999), st.sampled_from(["+", "-", "*"]), st.integers(-3, 3))
def test_random_integer_claims_are_judged_exactly(a, b, op, offset):
    truth = {"+": a + b, "-": a - b, "*": a * b}[op]
    text = f"We compute ({a}) {op} ({b}) = {truth + offset}."
    [claim] = check_arithmetic(text).claims
    assert claim.correct is (offset == 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500))
def test_fractions_match_python_fractions(p, q):
    assert evaluate_arithmetic(f"{p}/{q} + 1/2") == Fraction(p, q) + Fraction(1, 2)


@pytest.mark.parametrize(
    "text, score",
    [
        ("6 * 7 = 42. \\boxed{42}", 1.0),
        ("6 * 7 = 42 \\boxed{42}", 1.0),
        ("6 * 7 = \\boxed{42}", 1.0),
        ("6 * 7 = \\boxed{41}", 0.0),
        ("6 * 7 = 41. So \\boxed{41}", 0.0),
    ],
)
def test_a_boxed_answer_after_the_last_step_is_not_glued_to_it(text, score):
    check = check_arithmetic(text)
    assert len(check.claims) == 1
    assert check.score == score
