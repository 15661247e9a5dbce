"""`MajorityVote`: the group's most frequent answer as a pseudo-label (TTRL), clustered by equivalence."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from weakreward.rewards.answer_clusters import cluster_groups, safe_compare
from weakreward.rewards.base import Reward, RewardResult, Verifier, reward_dataclass
from weakreward.rollouts import Rollouts


def _default_verifier() -> Verifier:
    # Imported on use: constructing a MajorityVote with its own verifier never loads math-verify.
    from weakreward.rewards.math_verifier import MathVerifier

    return MathVerifier()


@reward_dataclass
class MajorityVote(Reward):
    """Test-time majority vote (TTRL): agree with the group's most frequent answer → 1, else 0.

    Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning" (arXiv 2504.16084): with no labels, the
    majority answer of the ``G`` completions sampled for a prompt serves as the pseudo-label ``ŷ``, and

        ``r_i = 1[a_i ≡ ŷ]``,  ``ŷ = argmax_c |{j : a_j ∈ c}|``,

    where ``a_i`` is the answer extracted from completion ``i`` and ``c`` ranges over clusters of
    *equivalent* answers. Unlike TTRL, which votes by string, answers are clustered by the verifier's
    `compare`, so ``\\frac12``, ``0.5`` and ``1/2`` are one vote. The clusters are those of
    `weakreward.rewards.answer_clusters`: connected components of the equivalence graph, the same
    whatever the order of the group (equivalence is not transitive: ``50\\%`` equals ``50`` and
    ``0.5`` but ``50`` does not equal ``0.5``, so a greedy clustering would depend on the order). All
    groups are clustered in one batched `compare` call (a process-pool verifier runs it in parallel).

    How a completion is scored (``score_by``):

    - ``"verify"`` (default, the paper's released code): the majority answer is the group's pseudo-label,
      and each *whole completion* is scored against it by the verifier (`Reward.compute` with the label
      as reference), as the release scores with ``math_verify.compute_score(completion, label)``. A
      completion that writes "the result is 12" without a box still scores 1 when the verifier finds 12
      in it, and a completion whose answer is in the winning cluster but not equivalent to the label
      itself (``50`` against ``0.5``) scores 0.
    - ``"cluster"``: 1 when the completion's extracted answer lies in the winning cluster, else 0.

    Rules:

    - Unparsable completions (no extractable answer) count in the denominator and never win.
    - Ties between clusters of equal size go to the cluster whose label is the smaller string, so a
      permutation of the group never changes the label (TTRL's ``Counter.most_common`` takes the first
      seen instead). The label is the cluster's most frequent form (ties: the smaller string).
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
        score_by: ``"verify"`` (the release's way) or ``"cluster"`` (see above).

    Details (one entry per completion):
        ``answer``: the extracted answer, or None. ``pseudo_label``: the group's majority answer, or
        None. ``majority_ratio``: ``|largest cluster| / G`` of the group. ``label_correct``: whether the
        pseudo-label matches the completion's reference per ``verifier.compare`` (False for a group
        without a pseudo-label), None where the reference is None — its mean is the pseudo-label
        accuracy. ``reason``: ``"agree"``, ``"disagree"``, ``"no answer"``, ``"below min_ratio"`` or
        ``"extract error: ..."``.

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
    score_by: Literal["verify", "cluster"] = "verify"
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

        groups = list(rollouts.groups().values())
        clusters = cluster_groups([[answers[i] for i in rows] for rows in groups], self.verifier)

        scores = np.zeros(n)
        pseudo: list[str | None] = [None] * n
        ratios = [0.0] * n
        to_verify: list[int] = []
        for rows, ranked in zip(groups, clusters):
            winner = ranked[0] if ranked else None
            ratio = winner.count / len(rows) if winner is not None else 0.0
            weak = winner is not None and ratio < self.min_ratio
            members = set(winner.members) if winner is not None else set()
            for i in rows:
                pseudo[i], ratios[i] = (winner.label if winner is not None else None), ratio
                if weak:
                    if answers[i] is not None:
                        reasons[i] = "below min_ratio"
                elif winner is not None and self.score_by == "verify":
                    to_verify.append(i)
                elif (answer := answers[i]) is not None:
                    agree = answer.strip() in members
                    scores[i] = 1.0 if agree else 0.0
                    reasons[i] = "agree" if agree else "disagree"
        if to_verify:
            # The release's scoring: the whole completion against the label, by the verifier itself.
            labelled = dataclasses.replace(rollouts.select(to_verify), references=tuple(pseudo[i] for i in to_verify))
            verified = self._verify(labelled)
            for i, score in zip(to_verify, np.nan_to_num(verified, nan=0.0)):
                scores[i] = float(score == 1.0)
                if scores[i] == 1.0:
                    reasons[i] = "agree"
                elif answers[i] is not None:
                    reasons[i] = "disagree"

        details: dict[str, Sequence[Any]] = {
            "answer": answers,
            "pseudo_label": pseudo,
            "majority_ratio": ratios,
            "label_correct": self._label_correct(rollouts.references, pseudo),
            "reason": reasons,
        }
        return RewardResult(scores, details)

    def _verify(self, labelled: Rollouts) -> np.ndarray:
        """The verifier's scores of whole completions against their labels; one batched call, and only
        if it raises, one call per completion (so one bad completion scores 0, the others as usual)."""
        try:
            return np.asarray(self.verifier.compute(labelled).scores, dtype=np.float64)
        except Exception:  # noqa: BLE001 - a pathological completion must not crash training
            pass
        out = np.zeros(len(labelled))
        for k in range(len(labelled)):
            try:
                out[k] = float(self.verifier.compute(labelled.select([k])).scores[0])
            except Exception:  # noqa: BLE001
                out[k] = 0.0
        return out

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
        for key, match in zip(keys, safe_compare(self.verifier, [g for g, _ in keys], [a for _, a in keys])):
            pairs[key] = match
        for i, (ref, label) in enumerate(zip(references, pseudo)):
            if out[i] is None and ref is not None and label is not None:
                out[i] = pairs[(str(ref), label)]
        return out


__all__ = ["MajorityVote"]
