"""Item 12: the answer is read after the last ``</think>``; a thinking block's drafts never count.

Before: ``<think>\\boxed{5}</think> \\boxed{4}`` reached math-verify whole, which extracted ``5,4`` and
scored 0 against 4. The release's thinking-format reward reads the answer after ``</think>``.
"""

from __future__ import annotations

from weakreward import MajorityVote
from weakreward.rewards.extraction import extract_answer
from weakreward.rewards.math_verifier import MathVerifier

THINKING = "<think>\\boxed{5}</think> \\boxed{4}"


def test_math_verifier_reads_after_the_thinking_block(math_verifier):
    result = math_verifier.score([THINKING, "<think>\\boxed{4}</think> no answer"], references=["4", "4"])
    assert result.scores.tolist() == [1.0, 0.0]
    assert result.details["answer"][0] == "4"


def test_keep_thinking_reads_the_whole_text():
    whole = MathVerifier(workers=1, keep_thinking=True)
    try:
        result = whole.score([THINKING], references=["4"])
        assert result.scores.tolist() == [0.0] and result.details["answer"] == ["5,4"]
        assert whole.extract("<think>\\boxed{5}</think>") == "5"
    finally:
        whole.close()


def test_extraction_and_votes_ignore_drafts(math_verifier):
    assert extract_answer(THINKING) == "4" and extract_answer("<think>\\boxed{5}</think>") is None
    assert extract_answer("<think>\\boxed{5}</think>", keep_thinking=True) == "5"
    # Three drafts of 5 inside thinking blocks do not outvote two final answers of 4.
    group = ["<think>\\boxed{5}</think> \\boxed{4}", "\\boxed{4}", "<think>\\boxed{5}</think>"] + [
        "<think>\\boxed{5} \\boxed{5}</think>"
    ]
    result = MajorityVote(math_verifier).score(group)
    assert result.details["pseudo_label"] == ["4"] * 4
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 0.0]
