"""Diversity probes: strategy clustering on hand-made sets, the entropy formulas, distinct-n, answer
entropy and pass@k against brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.probes.diversity import (
    EmbeddingSimilarity,
    LexicalSimilarity,
    LLMStrategyJudge,
    answer_entropy,
    cluster_strategies,
    distinct_n,
    diversity_from_clusters,
    faithful_diversity,
    pass_at_k,
    strategy_diversity,
)

ALGEBRA = [
    "Let x be the number of apples. Then 3x + 2 = 11, so 3x = 9 and x = 3.",
    "Let x be the number of apples. Then 3x + 2 = 11, hence 3x = 9, so x = 3.",
    "Let x be the number of apples. Then 3x + 2 = 11, so 3x = 9 and therefore x = 3.",
]
GUESS = [
    "Try 1: 3 * 1 + 2 = 5, too small. Try 2: 3 * 2 + 2 = 8, too small. Try 3: 3 * 3 + 2 = 11. Found it.",
    "Try 1: 3 * 1 + 2 = 5, too small. Try 3: 3 * 3 + 2 = 11, found it.",
]
PICTURE = ["Draw 11 dots, remove 2, group the remaining 9 dots in 3 equal groups of 3 dots."]


def test_hand_made_strategies_cluster_by_method():
    ids, unknown = cluster_strategies(ALGEBRA + GUESS + PICTURE, LexicalSimilarity(threshold=0.4))
    assert ids == [0, 0, 0, 1, 1, 2] and unknown == 0


def test_tfidf_similarity_clusters_the_same_set():
    ids, _ = cluster_strategies(ALGEBRA + GUESS + PICTURE, LexicalSimilarity("tfidf", threshold=0.5))
    assert ids == [0, 0, 0, 1, 1, 2]


def test_greedy_clustering_compares_with_the_first_member_only():
    # b is close to a and to c, but c is far from a: c starts its own cluster.
    same = lambda x, y: abs(len(x) - len(y)) <= 1  # noqa: E731
    ids, _ = cluster_strategies(["aa", "aaa", "aaaa"], same)
    assert ids == [0, 0, 1]


def test_diversity_formulas_on_known_cluster_sizes():
    r = diversity_from_clusters(["a", "a", "b", "b", "c", "c", "d", "d"])
    assert r.entropy == pytest.approx(math.log(4)) and r.n_eff == pytest.approx(4.0)
    assert r.div == pytest.approx(3 / 7) and r.k == 8
    even = diversity_from_clusters(["a", "a", "b", "b", "c", "c", "d", "d"], normalize="clusters")
    assert even.div == pytest.approx(1.0) and even.k == 4
    one = diversity_from_clusters(["a"] * 5)
    assert one.entropy == 0 and one.n_eff == 1 and one.div == 0
    each = diversity_from_clusters(list(range(6)))
    assert each.div == pytest.approx(1.0)
    assert diversity_from_clusters([]).div == 0 and diversity_from_clusters([7]).div == 0
    with pytest.raises(ValueError, match="normalize"):
        diversity_from_clusters([1, 2], normalize="both")  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=30))
def test_diversity_is_in_unit_range_and_n_eff_bounded_by_clusters(labels):
    for norm in ("responses", "clusters"):
        r = diversity_from_clusters(labels, normalize=norm)
        assert 0.0 <= r.div <= 1.0 + 1e-12
        assert 1.0 - 1e-12 <= r.n_eff <= r.num_clusters + 1e-9


def test_strategy_diversity_of_the_hand_made_set():
    r = strategy_diversity(ALGEBRA + GUESS + PICTURE, LexicalSimilarity(threshold=0.4))
    assert r.sizes == [3, 2, 1]
    h = -(0.5 * math.log(0.5) + (1 / 3) * math.log(1 / 3) + (1 / 6) * math.log(1 / 6))
    assert r.entropy == pytest.approx(h) and r.div == pytest.approx((math.exp(h) - 1) / 5)


def test_faithful_diversity_uses_only_faithful_responses():
    responses = ALGEBRA + GUESS + PICTURE
    labels = [1.0, 0.0, None, 1.0, 0.5, 1.0]
    r = faithful_diversity(responses, labels, LexicalSimilarity(threshold=0.4))
    assert r.extra["faithful"] == 3 and r.k == 3 and r.sizes == [1, 1, 1] and r.div == pytest.approx(1.0)
    loose = faithful_diversity(responses, labels, LexicalSimilarity(threshold=0.4), min_label=0.5)
    assert loose.extra["faithful"] == 4
    with pytest.raises(ValueError, match="labels"):
        faithful_diversity(responses, labels[:2])


def test_llm_judge_yes_no_and_unknown():
    replies = iter(["They match.\nYes", "No.", "I am not sure"])
    judge = LLMStrategyJudge(lambda prompt: next(replies))
    ids, unknown = cluster_strategies(["a", "b", "c"], judge)
    # b joins a ("Yes"); c vs a gets "No." and starts a new cluster; the third reply is never asked for.
    assert ids == [0, 0, 1] and unknown == 0
    assert LLMStrategyJudge(lambda p: "hmm")("x", "y") is None
    assert LLMStrategyJudge(lambda p: 1 / 0)("x", "y") is None
    ids, unknown = cluster_strategies(["a", "b"], LLMStrategyJudge(lambda p: "unclear"))
    assert ids == [0, 1] and unknown == 1


def test_embedding_similarity_with_a_user_encoder():
    keywords = ["let", "try", "dots"]
    embed = lambda texts: [[t.lower().count(k) for k in keywords] for t in texts]  # noqa: E731
    ids, _ = cluster_strategies(ALGEBRA + GUESS + PICTURE, EmbeddingSimilarity(embed, threshold=0.9))
    assert ids == [0, 0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="shape"):
        EmbeddingSimilarity(lambda texts: [[1.0]]).fit(["a", "b"])


def test_distinct_n():
    assert distinct_n(["a b c", "a b d"], n=1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], n=2) == pytest.approx(3 / 4)
    assert distinct_n(["same words"] * 4, n=2) == pytest.approx(1 / 4)
    assert distinct_n([""], n=2) == 0.0
    with pytest.raises(ValueError, match="n"):
        distinct_n(["a"], n=0)


def test_answer_entropy():
    assert answer_entropy(["\\boxed{4}"] * 3) == 0.0
    assert answer_entropy(["\\boxed{4}", "\\boxed{5}"]) == pytest.approx(math.log(2))
    assert answer_entropy(["\\boxed{4}", "no answer"]) == 0.0
    assert answer_entropy(["\\boxed{4}", "no answer"], include_missing=True) == pytest.approx(math.log(2))
    assert answer_entropy(["4", "4 ", "5"], extract=None) == pytest.approx(
        answer_entropy(["a", "a", "b"], extract=None)
    )


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_brute_force_enumeration(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    value = pass_at_k(100_000, 3, 1000)
    exact = 1 - math.comb(100_000 - 3, 1000) / math.comb(100_000, 1000)
    assert value == pytest.approx(exact, rel=1e-9)
    assert pass_at_k(10_000, 0, 5000) == 0.0 and pass_at_k(10_000, 5001, 5000) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
