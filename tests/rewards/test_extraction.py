"""Answer extraction: boxed, "answer is", choice letters, numbers; linear time on hostile input."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.rewards.extraction import (
    answer_is,
    choice_letter,
    extract_answer,
    last_boxed,
    last_number,
    unwrap_latex,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{5}", "5"),
        (r"so \boxed{1} then \boxed{2}", "2"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\left\{1, 2\right\}}", r"\left\{1, 2\right\}"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),
        (r"\boxed{a_{b_{c}}}", "a_{b_{c}}"),
        (r"\fbox{42}", "42"),
        (r"$\boxed 7$", "7"),
        (r"\boxed 12, done", "12"),
        (r"\boxed{ 3 }", "3"),
        (r"\boxed{\boxed{9}}", "9"),
        (r"\boxed{1} and later \fbox{2}", "2"),
        (r"\fbox{1} and later \boxed{2}", "2"),
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        (r"\boxed{a \\{b}}", r"a \\{b}"),
    ],
)
def test_last_boxed_finds_the_final_box(text: str, expected: str) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no box here",
        r"\boxed{3",
        r"\boxed{1} ... \boxed{\frac{1}{2}",
        r"\boxed{}",
        r"\boxed{   }",
        r"\boxedx{3}",
        r"\boxed",
        r"\boxed{\}",
    ],
)
def test_last_boxed_is_none_without_a_complete_final_box(text: str) -> None:
    assert last_boxed(text) is None


def test_truncated_last_box_does_not_fall_back_to_an_earlier_box() -> None:
    assert last_boxed(r"\boxed{1} later \boxed{2") is None
    # extract_answer then tries "answer is"
    assert extract_answer(r"the answer is 2. \boxed{2") == "2"


def test_boxed_command_prefix_of_a_longer_command_is_skipped() -> None:
    assert last_boxed(r"\boxed{4} \boxedtext") == "4"


_plain_text = st.text(alphabet=st.characters(blacklist_characters="{}\\", blacklist_categories=("Cs",)), max_size=12)
_command = st.sampled_from([r"\frac", r"\sqrt", r"\pi", r"\left(", r"\right)", r"\\"])


def _balanced() -> st.SearchStrategy[str]:
    return st.recursive(
        st.one_of(_plain_text, _command),
        lambda inner: st.one_of(
            st.builds(lambda a, b: a + b, inner, inner),
            st.builds(lambda a: "{" + a + "}", inner),
        ),
        max_leaves=12,
    )


@settings(max_examples=200, deadline=None)
@given(content=_balanced(), prefix=_plain_text, suffix=_plain_text)
def test_boxed_round_trips_brace_balanced_content(content: str, prefix: str, suffix: str) -> None:
    text = prefix + r"\boxed{" + content + "}" + suffix
    expected = content.strip() or None
    assert last_boxed(text) == expected


@settings(max_examples=100, deadline=None)
@given(content=_balanced())
def test_an_unclosed_box_after_a_closed_one_gives_none(content: str) -> None:
    assert last_boxed(r"\boxed{1} " + r"\boxed{" + content) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is 42.", "42"),
        ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The final answer is: 3.5.", "3.5"),
        ("**Answer:** 7", "7"),
        ("Answer: x = 3\nThen more text", "x = 3"),
        ("the answer is 10. Let me double check: yes.", "10"),
        ("The answer is 1 and later the ANSWER IS 2", "2"),
        ("The answer is \\(12\\).", "12"),
    ],
)
def test_answer_is_reads_the_last_answer_phrase(text: str, expected: str) -> None:
    assert answer_is(text) == expected


@pytest.mark.parametrize("text", ["", "no phrase", "the answer is", "The answer is .", "answer:   "])
def test_answer_is_none_without_an_answer(text: str) -> None:
    assert answer_is(text) is None


def test_extract_answer_prefers_the_box() -> None:
    assert extract_answer(r"The answer is 3. Actually \boxed{4}") == "4"
    assert extract_answer("The answer is 3.") == "3"
    assert extract_answer("nothing") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C", "C"),
        ("(c)", "C"),
        ("B.", "B"),
        (r"\boxed{C}", "C"),
        (r"\boxed{(C)}", "C"),
        (r"\boxed{\text{C}}", "C"),
        (r"$\boxed{\textbf{(D)}}$", "D"),
        (r"\boxed{C) 10^{-4} eV}", "C"),
        ("Answer: C", "C"),
        ("The answer is (b).", "B"),
        ("The correct option is (A) because ...", "A"),
        ("I compared (A) and (B); (D) is right", "D"),
    ],
)
def test_choice_letter_finds_the_pick(text: str, expected: str) -> None:
    assert choice_letter(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "the answer is a prime", r"\boxed{E}", "Answer: Cat", r"\boxed{42}", "nothing here", "(E)"],
)
def test_choice_letter_none_without_a_valid_pick(text: str) -> None:
    assert choice_letter(text) is None


def test_choice_letter_respects_choices() -> None:
    assert choice_letter(r"\boxed{E}", choices="ABCDE") == "E"
    assert choice_letter(r"\boxed{D}", choices="ABC") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5 apples and 1,250.5 pears", "1,250.5"), ("x = -3", "-3"), ("rate 3e-4.", "3e-4"), ("none", None), ("1,2", "2")],
)
def test_last_number(text: str, expected: str | None) -> None:
    assert last_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("$5$", "5"), (r"\(x\)", "x"), (r"$\text{ Paris }$", "Paris"), (r"\text{a} + \text{b}", r"\text{a} + \text{b}")],
)
def test_unwrap_latex(text: str, expected: str) -> None:
    assert unwrap_latex(text) == expected


_HOSTILE = {
    "plain": "x" * 1_000_000,
    "open boxes": "\\boxed{" * 150_000,
    "open braces": "\\boxed{" + "{" * 1_000_000,
    "fake commands": "\\boxedx" * 150_000,
    "answer phrases": "answer is " * 100_000,
    "parens": "(A" * 500_000,
    "thousands": "1," * 500_000,
    "backslashes": "\\" * 1_000_000,
}


@pytest.mark.parametrize("name", sorted(_HOSTILE))
def test_extraction_is_linear_on_megabyte_inputs(name: str) -> None:
    text = _HOSTILE[name]
    start = time.perf_counter()
    extract_answer(text)
    choice_letter(text)
    last_number(text)
    # Linear scans take ~0.1 s here; a quadratic one would take minutes.
    assert time.perf_counter() - start < 5.0
