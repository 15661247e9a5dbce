"""FormatReward: presets, custom patterns, linear-time search, length cap, config errors."""

from __future__ import annotations

import pickle
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import FormatReward

BOXED_CASES = [
    ("The answer is \\boxed{4}.", 1),
    ("\\boxed{\\frac{1}{2}}", 1),
    ("\\boxed {x+1}", 1),
    ("so \\boxed{ 7 }", 1),
    ("\\boxed{}", 0),
    ("\\boxed{ }", 0),
    ("boxed{4}", 0),
    ("The answer is 4.", 0),
    ("", 0),
]

THINK_CASES = [
    ("<think>2+2 is 4</think>\nSo \\boxed{4}", 1),
    ("  <think>\nmultiline\nreasoning\n</think> \\boxed{x}", 1),
    ("<think>a</think><think>b</think> \\boxed{1}", 1),
    ("\\boxed{4} <think>late</think>", 0),  # the answer must come after the thinking
    ("<think>\\boxed{4}</think>", 0),
    ("<think>never closed \\boxed{4}", 0),
    ("Sure! <think>x</think> \\boxed{4}", 0),  # must open with <think>
    ("<think>x</think> 4", 0),
]


@pytest.mark.parametrize("text,want", BOXED_CASES)
def test_boxed_preset(text, want):
    result = FormatReward.boxed().score([text])
    assert result.scores.tolist() == [want]
    assert result.details["reason"] == ["match" if want else "no match"]


@pytest.mark.parametrize("text,want", THINK_CASES)
def test_think_then_boxed_preset(text, want):
    assert FormatReward.think_then_boxed().score([text]).scores.tolist() == [want]


def test_custom_pattern_uses_dotall_and_search():
    fmt = FormatReward(r"<answer>.+</answer>\Z", name="answer_tag")
    assert fmt.score(
        ["x <answer>line1\nline2</answer>", "<answer>1</answer> trailing", "<answer></answer>"]
    ).scores.tolist() == [1, 0, 0]
    assert fmt.name == "answer_tag"


@pytest.mark.parametrize(
    "text",
    [
        "<think>" + "</think>" * 50_000,  # many closes, no box: a naive lazy pattern is quadratic here
        "<think>" + "x" * 200_000 + "</think>" + "\\boxed{}" * 30_000,
        "\\boxed{ }" * 60_000,
        "\\boxed" + " " * 150_000,
    ],
)
def test_presets_stay_linear_on_adversarial_text(text):
    for fmt in (FormatReward.boxed(max_chars=10**6), FormatReward.think_then_boxed(max_chars=10**6)):
        start = time.perf_counter()
        result = fmt.score([text])
        assert time.perf_counter() - start < 2.0  # quadratic behaviour would take minutes
        assert result.scores.tolist() == [0.0]


def test_too_long_completions_score_zero_without_search():
    fmt = FormatReward.boxed(max_chars=100)
    result = fmt.score(["\\boxed{1}" + " " * 100, "\\boxed{1}"])
    assert result.scores.tolist() == [0, 1]
    assert result.details["reason"] == ["too long", "match"]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"pattern": "("}, "pattern"),
        ({"pattern": 3}, "pattern"),
        ({"pattern": "x", "max_chars": 0}, "max_chars"),
        ({"pattern": "x", "name": ""}, "name"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=field):
        FormatReward(**kwargs)


@pytest.mark.parametrize("fmt", [FormatReward.boxed(), FormatReward.think_then_boxed(), FormatReward(r"^A", name="a")])
def test_pickle_round_trip(fmt):
    copy = pickle.loads(pickle.dumps(fmt))
    texts = [t for t, _ in BOXED_CASES + THINK_CASES] + ["A b", "b A"]
    assert copy.score(texts).scores.tolist() == fmt.score(texts).scores.tolist()
    assert (copy.pattern, copy.max_chars, copy.name) == (fmt.pattern, fmt.max_chars, fmt.name)


@settings(max_examples=50, deadline=None)
@given(
    prefix=st.text(max_size=40),
    body=st.text(alphabet="0123456789xy+-^\\/(){ }", max_size=10).filter(
        lambda b: b.strip() and b.strip()[0] not in "{}"
    ),
    suffix=st.text(max_size=40),
)
def test_any_text_with_a_boxed_answer_passes_the_boxed_preset(prefix, body, suffix):
    assert FormatReward.boxed().score([f"{prefix}\\boxed{{{body}}}{suffix}"]).scores.tolist() == [1.0]
    # Removing the box (every backslash) always fails it.
    assert FormatReward.boxed().score([f"{prefix}boxed{{{body}}}{suffix}".replace("\\", "")]).scores.tolist() == [0.0]
