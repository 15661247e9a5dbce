"""MultipleChoice: GPQA-style letters from real answer formats."""

from __future__ import annotations

import math
import pickle

import pytest

from weakreward import MultipleChoice


@pytest.mark.parametrize(
    "completion",
    [
        r"The energy difference must exceed the linewidth, so \boxed{C}",
        r"\boxed{(C)}",
        r"\boxed{\text{C}}",
        r"\boxed{C) 10^{-4} eV}",
        "Answer: C",
        "The answer is (c).",
        "C",
    ],
)
def test_letter_forms_match_gpqa_gold(completion: str) -> None:
    # GPQA-diamond row 0 of the paper's eval set has ground truth "C".
    r = MultipleChoice().score([completion], references=["C"])
    assert r.scores.tolist() == [1.0]
    assert r.details["answer"] == ["C"]


def test_reasons() -> None:
    r = MultipleChoice().score(
        [r"\boxed{B}", "I cannot tell", r"\boxed{C}", r"\boxed{C}"], references=["C", "C", "Z", None]
    )
    assert r.scores[:3].tolist() == [0.0, 0.0, 0.0]
    assert math.isnan(r.scores[3])
    assert r.details["reason"] == [
        "mismatch",
        "no answer",
        "error: reference is not one of the choices",
        "no reference",
    ]


def test_reference_forms_are_normalised() -> None:
    mc = MultipleChoice()
    assert [v.match for v in mc.compare(["(C)", "c", r"\text{C}"], ["C", "C", "C"])] == [True, True, True]


def test_custom_choices() -> None:
    mc = MultipleChoice(choices="ABCDE")
    assert mc.score([r"\boxed{E}"], references=["E"]).scores.tolist() == [1.0]
    assert MultipleChoice().score([r"\boxed{E}"], references=["A"]).details["reason"] == ["no answer"]


@pytest.mark.parametrize("choices", ["", "abc", "AAB", "A1", 5])
def test_bad_choices_name_the_field(choices: object) -> None:
    with pytest.raises(ValueError, match="MultipleChoice.choices"):
        MultipleChoice(choices=choices)  # type: ignore[arg-type]


def test_pickle_round_trip() -> None:
    copy = pickle.loads(pickle.dumps(MultipleChoice(choices="ABCDE")))
    assert copy.choices == "ABCDE"
    assert copy.score(["Answer: E"], references=["E"]).scores.tolist() == [1.0]
