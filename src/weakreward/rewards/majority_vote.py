"""`MajorityVote`: the group's most frequent answer as a pseudo-label (TTRL), clustered by equivalence."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from weakreward.rewards.base import Reward, RewardResult, Verifier, reward_dataclass
from weakreward.rollouts import Rollouts


def _default_verifier() -> Verifier:
    # Imported on use: constructing a MajorityVote with its own verifier never loads math-verify.
    from weakreward.rewards.math_verifier import MathVerifier

    return MathVerifier()


def _safe_compare(verifier: Verifier, golds: list[str], answers: list[str]) -> list[bool]:
    """``verifier.compare`` as booleans; a pair whose comparison raises counts as *not* equivalent.

    One batched call first (so a process-pool verifier runs the pairs in parallel); only if that call
    raises are the pairs retried one by one, to isolate the bad one.
    """
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


@dataclass
class _Group:
    """Clustering state of one group: unique answers in first-seen order, and their clusters."""

    indices: list[int]
    uniques: list[str]  # distinct answer strings, first-seen order
    counts: dict[str, int]  # completions per distinct string
    reps: list[str] = field(default_factory=list)  # one representative (first-seen form) per cluster
    cluster_of: dict[str, int] = field(default_factory=dict)  # distinct string -> cluster index


@reward_dataclass
class MajorityVote(Reward):
    """Test-time majority vote (TTRL): agree with the group's most frequent answer → 1, else 0.

    Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning" (arXiv 2504.16084): with no labels, the
    majority answer of the ``G`` completions sampled for a prompt serves as the pseudo-label ``ŷ``, and

        ``r_i = 1[a_i ≡ ŷ]``,  ``ŷ = argmax_c |{j : a_j ∈ c}|``,

    where ``a_i`` is the answer extracted from completion ``i`` and ``c`` ranges over clusters of
    *equivalent* answers. Unlike TTRL, which votes by string, answers are clustered by the verifier's
    `compare`, so ``\\frac12``, ``0.5`` and ``1/2`` are one vote.

    Clustering is greedy, in the order answers are first seen in the group: each new distinct answer is
    compared (gold-first, the cluster representative as gold) with the representatives of the clusters
    found so far and joins the first that matches, or starts a new cluster. String-identical answers
    skip the comparison. All groups advance in lock-step, so each round is one batched `compare` call
    over the whole batch (a process-pool verifier such as `MathVerifier` runs it in parallel); a group
    with ``k`` distinct answers needs ``k − 1`` rounds.

    Rules:

    - Unparsable completions (no extractable answer) count in the denominator and never win.
    - Ties between clusters of equal size go to the cluster seen first in the group.
    - The majority ratio is ``|largest cluster| / G``. If it is below ``min_ratio`` the whole group
      scores 0 (the vote is too weak to trust; reason ``"below min_ratio"``); its pseudo-label is still
      reported.
    - A group in which no completion has an answer scores 0 everywhere and has pseudo-label None.
    - A comparison that raises (or times out) counts as "not equivalent"; it never crashes the call.

    Scores are always 0 or 1, never NaN. References are optional: where present they are used only for
    the ``label_correct`` diagnostic, never for the score.

    Args:
        verifier: Extracts answers and decides equivalence. Default: ``MathVerifier()``.
        min_ratio: Minimum majority ratio in ``[0, 1]`` for a group to be rewarded at all.

    Details (one entry per completion):
        ``answer``: the extracted answer, or None. ``pseudo_label``: the group's majority answer (its
        first-seen form), or None. ``majority_ratio``: ``|largest cluster| / G`` of the group.
        ``label_correct``: whether the pseudo-label matches the completion's reference per
        ``verifier.compare`` (False for a group without a pseudo-label), None where the reference is
        None — its mean is the pseudo-label accuracy. ``reason``: ``"agree"``, ``"disagree"``,
        ``"no answer"``, ``"below min_ratio"`` or ``"extract error: ..."``.

    Examples:
        >>> from weakreward.rewards.base import Verdict, Verifier
        >>> class Last(Verifier):  # the last word is the answer; equal strings match
        ...     def extract(self, completion): return completion.split()[-1] if completion.split() else None
        ...     def compare(self, golds, answers): return [Verdict(g == a, "") for g, a in zip(golds, answers)]
        >>> vote = MajorityVote(Last())
        >>> result = vote.score(["so 4", "so 5", "thus 4", ""])
        >>> result.scores.tolist()
        [1.0, 0.0, 1.0, 0.0]
        >>> set(result.details["pseudo_label"]), set(result.details["majority_ratio"])
        ({'4'}, {0.5})
    """

    verifier: Verifier = field(default_factory=_default_verifier)
    min_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    name: str = "majority_vote"

    @property
    def sees_groups(self) -> bool:
        return True

    def compute(self, rollouts: Rollouts) -> RewardResult:
        n = len(rollouts)
        answers: list[str | None] = [None] * n
        reasons: list[str] = ["no answer"] * n
        for i, completion in enumerate(rollouts.completions):
            try:
                answer = self.verifier.extract(completion)
            except Exception as exc:  # noqa: BLE001 - a bad completion gets a score, not a crash
                reasons[i] = f"extract error: {type(exc).__name__}"
                continue
            answers[i] = None if answer is None else str(answer)

        groups = self._cluster(rollouts.groups(), answers)

        scores = np.zeros(n)
        pseudo: list[str | None] = [None] * n
        ratios = [0.0] * n
        for group in groups:
            size = len(group.indices)
            votes = [0] * len(group.reps)
            for answer, count in group.counts.items():
                votes[group.cluster_of[answer]] += count
            # max() returns the first maximal cluster: ties go to the first seen.
            winner = max(range(len(votes)), key=votes.__getitem__) if votes else None
            ratio = votes[winner] / size if winner is not None else 0.0
            label = group.reps[winner] if winner is not None else None
            weak = winner is not None and ratio < self.min_ratio
            for i in group.indices:
                pseudo[i], ratios[i] = label, ratio
                if answers[i] is None:
                    continue
                agree = group.cluster_of[answers[i]] == winner
                if weak:
                    reasons[i] = "below min_ratio"
                else:
                    scores[i] = 1.0 if agree else 0.0
                    reasons[i] = "agree" if agree else "disagree"

        details: dict[str, Sequence[Any]] = {
            "answer": answers,
            "pseudo_label": pseudo,
            "majority_ratio": ratios,
            "label_correct": self._label_correct(rollouts.references, pseudo),
            "reason": reasons,
        }
        return RewardResult(scores, details)

    def _cluster(self, groups: dict[Hashable, list[int]], answers: list[str | None]) -> list[_Group]:
        """Greedy equivalence clustering of every group's distinct answers, one `compare` per round."""
        states = []
        for indices in groups.values():
            counts: dict[str, int] = {}
            for i in indices:
                if answers[i] is not None:
                    counts[answers[i]] = counts.get(answers[i], 0) + 1
            state = _Group(indices=indices, uniques=list(counts), counts=counts)
            if state.uniques:
                state.reps.append(state.uniques[0])
                state.cluster_of[state.uniques[0]] = 0
            states.append(state)

        rounds = max((len(s.uniques) for s in states), default=0)
        for k in range(1, rounds):
            # Round k: the k-th distinct answer of each group against that group's representatives.
            golds: list[str] = []
            candidates: list[str] = []
            owners: list[tuple[_Group, int]] = []  # (group, cluster index) per pair
            for state in states:
                if k < len(state.uniques):
                    for c, rep in enumerate(state.reps):
                        golds.append(rep)
                        candidates.append(state.uniques[k])
                        owners.append((state, c))
            matches = _safe_compare(self.verifier, golds, candidates)
            for state in states:
                if k < len(state.uniques):
                    state.cluster_of[state.uniques[k]] = -1
            for (state, c), match in zip(owners, matches):
                answer = state.uniques[k]
                if match and state.cluster_of[answer] == -1:
                    state.cluster_of[answer] = c  # the first matching cluster wins
            for state in states:
                if k < len(state.uniques) and state.cluster_of[state.uniques[k]] == -1:
                    state.cluster_of[state.uniques[k]] = len(state.reps)
                    state.reps.append(state.uniques[k])
        return states

    def _label_correct(self, references: Sequence[str | None], pseudo: list[str | None]) -> list[bool | None]:
        """Per completion: does the group's pseudo-label match its reference? (one batched compare)."""
        out: list[bool | None] = [None] * len(pseudo)
        pairs: dict[tuple[str, str], bool] = {}
        for i, (ref, label) in enumerate(zip(references, pseudo)):
            if ref is None:
                continue
            if label is None:
                out[i] = False
            elif str(ref) == label:
                out[i] = True
            else:
                pairs.setdefault((str(ref), label), False)
        keys = list(pairs)
        for key, match in zip(keys, _safe_compare(self.verifier, [g for g, _ in keys], [a for _, a in keys])):
            pairs[key] = match
        for i, (ref, label) in enumerate(zip(references, pseudo)):
            if out[i] is None and ref is not None and label is not None:
                out[i] = pairs[(str(ref), label)]
        return out


__all__ = ["MajorityVote"]
