"""Answer clusters: a group's answers grouped by a verifier's equivalence, the same whatever their order.

The one clustering behind `MajorityVote` (the pseudo-label), `mine_wrong_answers` (the most frequent
wrong answer) and `answer_entropy` (the answer distribution), so voting and wrong-answer mining always
agree on the same group.

Equivalence checks are not transitive (math-verify: ``50\\%`` equals ``50`` and ``0.5``, but ``50`` does
not equal ``0.5``), so a greedy "join the first cluster that matches" depends on the order in which
answers arrive. Here the clusters are the *connected components* of the equivalence graph instead:

1. distinct answers (after stripping; answers equal up to whitespace are one) are the nodes;
2. every pair of distinct answers is compared once, gold-first, the gold being the one that comes first
   in the canonical order ``(−count, text)`` (the more frequent, then the alphabetically smaller);
3. two answers are in one cluster when a chain of matches joins them.

Every step depends on the multiset of answers only, never on their order, so permuting a group permutes
nothing but the positions. A cluster's label is its most frequent surface form (ties: the smallest
string); clusters are ranked by size, ties again by the smaller label. A comparison that raises counts
as "not equivalent" (one bad answer never crashes a training step).

Without a verifier, answers cluster by identity up to whitespace (no comparison calls).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from weakreward.rewards.base import Verifier

__all__ = ["AnswerCluster", "cluster_answers", "cluster_groups", "safe_compare"]


@dataclass(frozen=True)
class AnswerCluster:
    """One cluster of equivalent answers.

    Attributes:
        label: The most frequent surface form (ties: the smallest string).
        count: How many answers (with repetition) fall in the cluster.
        members: The distinct answer strings in the cluster, sorted.
    """

    label: str
    count: int
    members: tuple[str, ...]


def safe_compare(verifier: Verifier, golds: Sequence[str], answers: Sequence[str]) -> list[bool]:
    """``verifier.compare`` as booleans; a pair whose comparison raises counts as *not* equivalent.

    One batched call first (a process-pool verifier runs the pairs in parallel); only if it raises or
    returns the wrong number of verdicts are the pairs retried one by one, to isolate the bad one.

    Args:
        verifier: The verifier whose ``compare`` decides equivalence.
        golds: The trusted side of each pair (gold first, as `Verifier.compare`).
        answers: The answers, one per gold.

    Returns:
        One bool per pair; empty for no pairs.

    Examples:
        >>> from weakreward.rewards.base import Verdict, Verifier
        >>> class Eq(Verifier):
        ...     def extract(self, c): return c
        ...     def compare(self, g, a): return [Verdict(x == y, "") for x, y in zip(g, a)]
        >>> safe_compare(Eq(), ["1", "2"], ["1", "3"])
        [True, False]
    """
    golds, answers = list(golds), list(answers)
    if not golds:
        return []
    try:
        verdicts = verifier.compare(golds, answers)
        if len(verdicts) == len(golds):
            return [bool(v.match) for v in verdicts]
    except Exception:  # noqa: BLE001 - a pathological answer must not crash training
        pass
    out = []
    for gold, answer in zip(golds, answers):
        try:
            (verdict,) = verifier.compare([gold], [answer])
            out.append(bool(verdict.match))
        except Exception:  # noqa: BLE001
            out.append(False)
    return out


def _key(text: str) -> str:
    return "".join(text.split())


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cluster_groups(
    groups: Sequence[Sequence[str | None]], verifier: Verifier | None = None
) -> list[list[AnswerCluster]]:
    """Cluster the answers of many groups at once: one batched ``compare`` call for all of them.

    Args:
        groups: Per group, its answers (None = no answer; left out of every cluster).
        verifier: Decides equivalence (`Verifier.compare`, gold-first); None clusters by identity up to
            whitespace.

    Returns:
        Per group, its clusters ranked by ``(−count, label)``: the first is the majority.

    Examples:
        >>> [c.label for c in cluster_groups([["4", " 4", "5", None], []])[0]], cluster_groups([[]])
        (['4', '5'], [[]])
    """
    states = []
    golds: list[str] = []
    answers: list[str] = []
    owners: list[tuple[int, int, int]] = []  # (group, node a, node b) per compared pair
    for g, group in enumerate(groups):
        surfaces = Counter(a.strip() for a in group if a is not None and a.strip())
        by_key: dict[str, Counter[str]] = {}
        for text, count in surfaces.items():
            by_key.setdefault(_key(text), Counter())[text] += count
        # Nodes: forms equal up to whitespace; canonical order (−count, smallest form) fixes the gold side.
        nodes = sorted(by_key.values(), key=lambda c: (-sum(c.values()), min(c)))
        states.append(nodes)
        if verifier is None:
            continue
        heads = [min(c, key=lambda s: (-c[s], s)) for c in nodes]
        for i in range(len(nodes)):
            for j in range(i + 1, len(nodes)):
                golds.append(heads[i])
                answers.append(heads[j])
                owners.append((g, i, j))
    matches = safe_compare(verifier, golds, answers) if verifier is not None else []
    parents = [list(range(len(nodes))) for nodes in states]
    for (g, i, j), match in zip(owners, matches):
        if match:
            ri, rj = _find(parents[g], i), _find(parents[g], j)
            if ri != rj:
                parents[g][max(ri, rj)] = min(ri, rj)
    out = []
    for nodes, parent in zip(states, parents):
        merged: dict[int, Counter[str]] = {}
        for i, forms in enumerate(nodes):
            merged.setdefault(_find(parent, i), Counter()).update(forms)
        clusters = [
            AnswerCluster(
                label=min(forms, key=lambda s: (-forms[s], s)),
                count=sum(forms.values()),
                members=tuple(sorted(forms)),
            )
            for forms in merged.values()
        ]
        out.append(sorted(clusters, key=lambda c: (-c.count, c.label)))
    return out


def cluster_answers(answers: Sequence[str | None], verifier: Verifier | None = None) -> list[AnswerCluster]:
    """Cluster one group's answers by the verifier's equivalence (see the module docstring).

    Args:
        answers: The answers (None = no answer).
        verifier: Decides equivalence; None clusters by identity up to whitespace.

    Returns:
        The clusters ranked by ``(−count, label)``.

    Examples:
        >>> [(c.label, c.count) for c in cluster_answers(["2", "3", " 3 ", None])]
        [('3', 2), ('2', 1)]
    """
    return cluster_groups([answers], verifier)[0]
