"""MajorityVote (TTRL): equivalence clustering, unparsable answers, ties, min_ratio, label accuracy."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import FormatReward, Gate, MajorityVote, Rollouts, Verdict, Verifier
from weakreward.rewards.extraction import last_boxed
from weakreward.rewards.math_verifier import MathVerifier


class FractionVerifier(Verifier):
    """Cheap stand-in: the last ``\\boxed{}``; answers equal if equal as fractions (else as strings).

    Counts `compare` calls and pairs so tests can check batching.
    """

    name = "fractions"

    def __init__(self, raise_on: str | None = None):
        self.calls: list[int] = []
        self.raise_on = raise_on

    def extract(self, completion):
        return last_boxed(completion)

    @staticmethod
    def _value(text):
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError):
            return text

    def compare(self, golds, answers):
        self.calls.append(len(golds))
        if self.raise_on is not None and self.raise_on in answers:
            raise RuntimeError("pathological answer")
        return [Verdict(self._value(g) == self._value(a), "") for g, a in zip(golds, answers)]


class StringVerifier(FractionVerifier):
    """Plain TTRL: votes by string."""

    def compare(self, golds, answers):
        self.calls.append(len(golds))
        return [Verdict(g == a, "") for g, a in zip(golds, answers)]


@pytest.fixture(scope="module")
def math_verifier():
    verifier = MathVerifier(workers=1)
    yield verifier
    verifier.close()


def boxed(*answers):
    return [f"so \\boxed{{{a}}}" if a is not None else "I do not know" for a in answers]


def test_equivalent_forms_outvote_a_repeated_string(math_verifier):
    completions = ["\\boxed{1/2}", "\\boxed{0.5}", "\\boxed{\\frac12}", "\\boxed{3}", "\\boxed{3}"]
    result = MajorityVote(math_verifier).score(completions)
    assert result.scores.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    # The cluster's most frequent form; all three tie at one vote, so the smallest string.
    assert result.details["pseudo_label"] == ["0.5"] * 5
    assert result.details["majority_ratio"] == [0.6] * 5
    assert result.details["answer"] == ["1/2", "0.5", "\\frac12", "3", "3"]
    assert result.details["reason"] == ["agree"] * 3 + ["disagree"] * 2


def test_string_vote_would_have_picked_the_repeated_string():
    # The same group under string voting (TTRL's original rule): "3" wins 2 to 1.
    completions = ["\\boxed{1/2}", "\\boxed{0.5}", "\\boxed{2/4}", "\\boxed{3}", "\\boxed{3}"]
    assert MajorityVote(StringVerifier()).score(completions).scores.tolist() == [0, 0, 0, 1, 1]
    assert MajorityVote(FractionVerifier()).score(completions).scores.tolist() == [1, 1, 1, 0, 0]


def test_all_unparsable_group_scores_zero_without_a_label():
    result = MajorityVote(FractionVerifier()).score(
        ["no idea", "", "\\boxed{}", "hmm"], references=["4", "4", None, "4"]
    )
    assert result.scores.tolist() == [0.0] * 4
    assert result.details["pseudo_label"] == [None] * 4
    assert result.details["majority_ratio"] == [0.0] * 4
    assert result.details["reason"] == ["no answer"] * 4
    # No label is not a right label; no reference gives no verdict.
    assert result.details["label_correct"] == [False, False, None, False]


def test_unparsable_answers_count_in_the_denominator_and_never_win():
    result = MajorityVote(FractionVerifier()).score(boxed(None, None, None, "7", None))
    assert result.details["pseudo_label"] == ["7"] * 5
    assert result.details["majority_ratio"] == [0.2] * 5
    assert result.scores.tolist() == [0, 0, 0, 1, 0]


@pytest.mark.parametrize(
    "answers,winner",
    [
        (("3", "4", "4", "3"), "3"),
        (("4", "3", "3", "4"), "3"),
        ((None, "9", "8", "8", "9"), "8"),
        (("1/2", "6", "0.5", "6"), "0.5"),
    ],
)
def test_tied_vote_breaks_by_the_smaller_label_whatever_the_order(answers, winner):
    result = MajorityVote(FractionVerifier()).score(boxed(*answers))
    assert set(result.details["pseudo_label"]) == {winner}
    value = Fraction(winner)
    want = [1.0 if a is not None and Fraction(a) == value else 0.0 for a in answers]
    assert result.scores.tolist() == want


def test_label_correct_uses_equivalence_against_the_reference(math_verifier):
    completions = ["\\boxed{1/2}", "\\boxed{0.5}", "\\boxed{7}", "\\boxed{7}", "\\boxed{7}", "\\boxed{2}"]
    groups = ["a", "a", "b", "b", "c", "c"]
    references = ["0.5", "0.5", "8", "8", None, None]
    result = MajorityVote(math_verifier).score(completions, references=references, group_ids=groups)
    assert result.details["label_correct"] == [True, True, False, False, None, None]
    # The trainer's label accuracy: mean over labelled completions.
    assert result.log()["label_correct"] == 0.5
    # References never change the score.
    unlabelled = MajorityVote(math_verifier).score(completions, group_ids=groups)
    assert unlabelled.scores.tolist() == result.scores.tolist()
    assert unlabelled.details["label_correct"] == [None] * 6


def test_min_ratio_zeroes_weak_majorities():
    completions = boxed("1", "1", "2", "3", "4") + boxed("5", "5", "5", "6", None)
    groups = ["weak"] * 5 + ["strong"] * 5
    result = MajorityVote(FractionVerifier(), min_ratio=0.5).score(completions, group_ids=groups)
    assert result.scores[:5].tolist() == [0.0] * 5
    assert result.details["reason"][:5] == ["below min_ratio"] * 5
    assert result.details["pseudo_label"][:5] == ["1"] * 5  # still reported for logging
    assert result.details["majority_ratio"][:5] == [0.4] * 5
    assert result.scores[5:].tolist() == [1, 1, 1, 0, 0]
    # A ratio exactly at the threshold passes.
    at = MajorityVote(FractionVerifier(), min_ratio=0.4).score(completions, group_ids=groups)
    assert at.scores[:5].tolist() == [1, 1, 0, 0, 0]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_min_ratio_out_of_range_raises_naming_the_field(bad):
    with pytest.raises(ValueError, match="min_ratio"):
        MajorityVote(FractionVerifier(), min_ratio=bad)


def test_non_verifier_raises_naming_the_field():
    with pytest.raises(ValueError, match="MajorityVote.verifier: Input should be an instance of Verifier"):
        MajorityVote(verifier=lambda s: s)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MajorityVote.min_ratio: Input should be a valid number"):
        MajorityVote(FractionVerifier(), min_ratio="0.5")  # type: ignore[arg-type]


def test_interleaved_groups_are_scored_as_if_alone():
    completions = boxed("1", "2", "1", "2", "3", "2", None, "1")
    groups = ["x", "y", "x", "y", "x", "y", "z", "z"]
    vote = MajorityVote(FractionVerifier())
    together = vote.score(completions, group_ids=groups)
    rollouts = Rollouts.build(completions, group_ids=groups)
    for indices in rollouts.groups().values():
        alone = vote(rollouts.select(indices))
        assert together.scores[indices].tolist() == alone.scores.tolist()
        assert [together.details["pseudo_label"][i] for i in indices] == alone.details["pseudo_label"]
    assert together.scores.tolist() == [1, 1, 1, 1, 0, 1, 0, 1]


def test_clustering_is_one_batched_compare_call_across_groups():
    # 50 groups, each with 4 distinct answers: every pair once (6 per group), all in one call.
    completions, groups = [], []
    for g in range(50):
        completions += boxed(str(g), str(g + 1), f"{2 * g}/2", str(g + 2), str(g))
        groups += [g] * 5
    by_cluster = FractionVerifier()
    result = MajorityVote(by_cluster, score_by="cluster").score(completions, group_ids=groups)
    assert by_cluster.calls == [300]
    assert result.scores.reshape(50, 5).tolist() == [[1, 0, 1, 0, 1]] * 50
    # The release's scoring adds one batched verification of the 250 answered completions.
    by_verify = FractionVerifier()
    result = MajorityVote(by_verify).score(completions, group_ids=groups)
    assert by_verify.calls == [300, 250]
    assert result.scores.reshape(50, 5).tolist() == [[1, 0, 1, 0, 1]] * 50


def test_string_identical_answers_need_no_comparison():
    verifier = FractionVerifier()
    result = MajorityVote(verifier, score_by="cluster").score(boxed("42", "42", None, "42"))
    assert verifier.calls == []
    assert result.scores.tolist() == [1, 1, 0, 1]


def test_a_comparison_that_raises_counts_as_different_and_does_not_crash():
    verifier = FractionVerifier(raise_on="boom")
    result = MajorityVote(verifier).score(boxed("2", "boom", "4/2", "boom", "1"))
    assert result.scores.tolist() == [1, 0, 1, 0, 0]
    assert result.details["majority_ratio"] == [0.4] * 5


def test_an_extractor_that_raises_gives_a_reason_not_a_crash():
    class Fragile(FractionVerifier):
        def extract(self, completion):
            if "crash" in completion:
                raise IndexError("bad text")
            return super().extract(completion)

    result = MajorityVote(Fragile()).score(["\\boxed{1}", "crash", "\\boxed{1}"])
    assert result.scores.tolist() == [1, 0, 1]
    assert result.details["reason"][1] == "extract error: IndexError"
    assert result.details["answer"][1] is None


def test_contract_properties():
    vote = MajorityVote(FractionVerifier())
    assert vote.sees_groups is True
    assert vote.needs == frozenset()
    assert vote.name == "majority_vote"
    assert len(vote(Rollouts.build([]))) == 0


def test_default_verifier_is_math_verify():
    vote = MajorityVote()
    try:
        assert isinstance(vote.verifier, MathVerifier)
    finally:
        vote.verifier.close()


def test_pickle_round_trip_scores_the_same(math_verifier):
    vote = MajorityVote(math_verifier, min_ratio=0.3)
    copy = pickle.loads(pickle.dumps(vote))
    completions = ["\\boxed{0.25}", "\\boxed{\\frac{1}{4}}", "\\boxed{5}", "oops"]
    try:
        assert copy.min_ratio == 0.3
        a, b = vote.score(completions, references=["1/4"] * 4), copy.score(completions, references=["1/4"] * 4)
        assert a.scores.tolist() == b.scores.tolist() == [1, 1, 0, 0]
        assert a.details == b.details
    finally:
        copy.verifier.close()


def test_gated_by_format():
    completions = ["\\boxed{4}", "\\boxed{4}", "4", "\\boxed{5}"]
    reward = Gate(FormatReward.boxed(), MajorityVote(FractionVerifier()))
    result = reward.score(completions)
    assert result.scores.tolist() == [1, 1, 0, 0]
    assert reward.sees_groups and reward.needs == frozenset()
    assert result.details["majority_vote/pseudo_label"] == ["4"] * 4
    assert result.details["open"] == [True, True, False, True]


answer_lists = st.lists(
    st.one_of(st.none(), st.sampled_from(["1", "2", "3", "1/2", "0.5", "2/4", "x"])), min_size=1, max_size=9
)


@settings(max_examples=60, deadline=None)
@given(answers=answer_lists, data=st.data())
def test_permuting_a_group_permutes_its_scores(answers, data):
    vote = MajorityVote(FractionVerifier())
    completions = boxed(*answers)
    result = vote.score(completions)
    scores = result.scores
    assert set(scores.tolist()) <= {0.0, 1.0}
    n_answered = sum(a is not None for a in answers)
    if n_answered:
        assert result.details["majority_ratio"][0] == pytest.approx(scores.mean())
        assert scores.sum() >= 1
    else:
        assert scores.sum() == 0
    perm = data.draw(st.permutations(range(len(answers))))
    permuted = vote.score([completions[i] for i in perm])
    assert permuted.scores.tolist() == scores[list(perm)].tolist()
    assert set(permuted.details["pseudo_label"]) == set(result.details["pseudo_label"])
