"""Item 1: majority vote does not depend on the order of the group; one clustering for vote, mining and
answer entropy.

math-verify's equivalence is not transitive: ``50\\%`` equals ``50`` and ``0.5``, ``50`` does not equal
``0.5``. Before the fix, greedy first-seen clustering rewarded all four of ``[50\\%, 50, 0.5, 0.5]`` but,
reordered as ``[50, 50\\%, 0.5, 0.5]``, made ``50`` the label and scored both ``0.5`` 0.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import MajorityVote
from weakreward.data.label_noise import mine_wrong_answers
from weakreward.probes.diversity import answer_entropy
from weakreward.rewards.answer_clusters import cluster_answers


def boxed(answers):
    return [f"so the answer is \\boxed{{{a}}}" for a in answers]


def test_the_non_transitive_pair_is_really_non_transitive(math_verifier):
    verdicts = math_verifier.compare(["50\\%", "50\\%", "50"], ["50", "0.5", "0.5"])
    assert [v.match for v in verdicts] == [True, True, False]


@pytest.mark.parametrize("order", [["50\\%", "50", "0.5", "0.5"], ["50", "50\\%", "0.5", "0.5"]])
def test_both_orders_give_one_cluster_and_the_same_label(math_verifier, order):
    (cluster,) = cluster_answers(order, math_verifier)
    # 50\% joins 50 and 0.5, so all three forms are one cluster of four; its commonest form is 0.5.
    assert cluster.count == 4 and cluster.label == "0.5"
    assert cluster.members == ("0.5", "50", "50\\%")


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 1, 0]])
def test_scores_follow_the_completions_in_every_order(math_verifier, order):
    answers = ["50\\%", "50", "0.5", "0.5"]
    completions = [boxed(answers)[i] for i in order]
    # Cluster membership: all four are in the winning cluster (before the fix: [1, 1, 0, 0] in the
    # order 50, 50\%, 0.5, 0.5).
    by_cluster = MajorityVote(math_verifier, score_by="cluster").score(completions)
    assert by_cluster.scores.tolist() == [1.0] * 4
    # The release's scoring, each whole completion against the label 0.5: 50 is not 0.5.
    by_verify = MajorityVote(math_verifier).score(completions)
    want = {"50\\%": 1.0, "50": 0.0, "0.5": 1.0}
    assert by_verify.scores.tolist() == [want[answers[i]] for i in order]
    assert set(by_verify.details["pseudo_label"]) == {"0.5"}


# Real answer groups: equivalent surface forms of a few values, plus the non-transitive percent.
FORMS = ["50\\%", "50", "0.5", "\\frac12", "1/2", "\\frac{1}{2}", "2", "2.0", "\\frac{4}{2}", "3", "x+1"]


@settings(max_examples=25)
@given(answers=st.lists(st.one_of(st.none(), st.sampled_from(FORMS)), min_size=1, max_size=8), data=st.data())
def test_permuting_a_real_group_permutes_scores_and_changes_nothing_else(math_verifier, answers, data):
    completions = [c if a is not None else "no idea" for a, c in zip(answers, boxed([a or "" for a in answers]))]
    perm = data.draw(st.permutations(range(len(answers))))
    for score_by in ("verify", "cluster"):
        vote = MajorityVote(math_verifier, score_by=score_by)
        base = vote.score(completions)
        moved = vote.score([completions[i] for i in perm])
        assert moved.scores.tolist() == base.scores[list(perm)].tolist()
        for key in ("pseudo_label", "majority_ratio"):
            assert moved.details[key] == [base.details[key][i] for i in perm]
    clusters = cluster_answers(answers, math_verifier)
    assert cluster_answers([answers[i] for i in perm], math_verifier) == clusters
    assert answer_entropy([answers[i] for i in perm], extract=None, verifier=math_verifier) == pytest.approx(
        answer_entropy(answers, extract=None, verifier=math_verifier)
    )


def test_mining_and_voting_agree_on_the_same_group(math_verifier):
    # The majority of this group is 3 (three forms); the reference is 5, so 3 is also the commonest
    # wrong answer, whatever the order.
    answers = ["\\frac{6}{2}", "2", "3", "3.0", "2", "5"]
    for order in (answers, answers[::-1]):
        vote = MajorityVote(math_verifier, score_by="cluster").score(boxed(order))
        label = vote.details["pseudo_label"][0]
        mined = mine_wrong_answers([boxed(order)], math_verifier, references=["5"])[0]
        assert label == mined == "3"
