"""Item 2: the release verifies each whole completion against the majority label.

The release (``reward_function.py``, MAJORITY_VOTE) replaces the ground truth by the majority answer and
scores ``math_verify.compute_score(completion, label)``: an unboxed "the result is 12" still counts when
math-verify finds 12 in it. ``score_by="cluster"`` keeps weakreward's earlier membership rule.
"""

from __future__ import annotations

import pytest

from weakreward import MajorityVote

GROUP = ["so \\boxed{12}", "hence \\boxed{12}", "the result is 12", "\\boxed{7}"]


def test_default_scores_whole_completions_with_the_verifier(math_verifier):
    result = MajorityVote(math_verifier).score(GROUP)
    assert MajorityVote(math_verifier).score_by == "verify"
    assert result.scores.tolist() == [1.0, 1.0, 1.0, 0.0]
    # Only marked answers vote: two of four, so the ratio is 2/4 and the label 12.
    assert result.details["pseudo_label"] == ["12"] * 4
    assert result.details["majority_ratio"] == [0.5] * 4
    assert result.details["answer"][2] is None and result.details["reason"][2] == "agree"


def test_cluster_option_scores_only_members_of_the_winning_cluster(math_verifier):
    result = MajorityVote(math_verifier, score_by="cluster").score(GROUP)
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert result.details["reason"] == ["agree", "agree", "no answer", "disagree"]


def test_min_ratio_still_zeroes_a_weak_vote_under_verification(math_verifier):
    result = MajorityVote(math_verifier, min_ratio=0.75).score(GROUP)
    assert result.scores.tolist() == [0.0] * 4


def test_unknown_scoring_rule_names_the_field(math_verifier):
    with pytest.raises(ValueError, match="score_by"):
        MajorityVote(math_verifier, score_by="string")  # type: ignore[arg-type]
