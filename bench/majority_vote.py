"""MajorityVote with math-verify: lock-step batched clustering vs one compare call per pair.

Both cluster the same groups with the same `MathVerifier`; the peer is the straightforward
implementation that calls ``compare`` once per (representative, answer) pair, so every pair is a round
trip to a worker. Also reports how often equivalence clustering and TTRL's string vote pick a different
pseudo-label, and their label accuracy. Writes bench/results/majority_vote.json.

Run: .venv/bin/python bench/majority_vote.py [--groups 64] [--size 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from weakreward import MajorityVote, Rollouts, Verifier
from weakreward.rewards.math_verifier import MathVerifier

# Each problem's true answer written several equivalent ways, plus wrong answers.
FORMS = {
    "1/2": ["1/2", "0.5", "\\frac12", "\\frac{1}{2}", "2/4"],
    "3/4": ["3/4", "0.75", "\\frac{3}{4}", "\\dfrac34"],
    "\\sqrt{2}": ["\\sqrt{2}", "\\sqrt2", "2^{1/2}"],
    "12": ["12", "12.0", "24/2", "12.00"],
    "\\pi/2": ["\\pi/2", "\\frac{\\pi}{2}", "\\dfrac{\\pi}{2}"],
}
WRONG = ["1", "2", "3", "0.25", "\\frac{1}{3}", "7", "\\sqrt{3}", "x+1"]


def make_batch(groups: int, size: int, seed: int) -> tuple[list[str], list[int], list[str]]:
    rng = random.Random(seed)
    completions, group_ids, refs = [], [], []
    for g in range(groups):
        truth = rng.choice(list(FORMS))
        for _ in range(size):
            r = rng.random()
            if r < 0.5:
                answer = rng.choice(FORMS[truth])
            elif r < 0.9:
                answer = rng.choice(WRONG[:3])  # wrong answers repeat, so strings can outvote forms
            else:
                answer = None
            completions.append(f"... so \\boxed{{{answer}}}" if answer else "no final answer")
            group_ids.append(g)
            refs.append(truth)
    return completions, group_ids, refs


class OnePairVerifier(Verifier):
    """Peer: the same verifier, but one `compare` round trip per pair (no batching)."""

    name = "one_pair"

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner

    def extract(self, completion: str) -> str | None:
        return self.inner.extract(completion)

    def compare(self, golds, answers):
        return [self.inner.compare([g], [a])[0] for g, a in zip(golds, answers)]


def string_vote_labels(rollouts: Rollouts, answers: list[str | None]) -> list[str | None]:
    labels = []
    for indices in rollouts.groups().values():
        counts = Counter(answers[i] for i in indices if answers[i] is not None)
        labels.append(counts.most_common(1)[0][0] if counts else None)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=64)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    completions, group_ids, refs = make_batch(args.groups, args.size, seed=0)
    rollouts = Rollouts.build(completions, group_ids=group_ids, references=refs)
    verifier = MathVerifier(workers=args.workers).start()
    ours, peer = MajorityVote(verifier), MajorityVote(OnePairVerifier(verifier))
    ours(rollouts)  # warm the workers' parse caches for both sides alike

    def best_of(reward: MajorityVote) -> tuple[float, object]:
        times, result = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = reward(rollouts)
            times.append(time.perf_counter() - start)
        return min(times), result

    t_ours, r_ours = best_of(ours)
    t_peer, r_peer = best_of(peer)
    assert r_ours.scores.tolist() == r_peer.scores.tolist(), "the two implementations disagree"

    first = [idx[0] for idx in rollouts.groups().values()]
    eq_labels = [r_ours.details["pseudo_label"][i] for i in first]
    eq_correct = [r_ours.details["label_correct"][i] for i in first]
    str_labels = string_vote_labels(rollouts, r_ours.details["answer"])
    str_correct = [
        lab is not None and v.match
        for lab, v in zip(str_labels, verifier.compare([refs[i] for i in first], [lab or "" for lab in str_labels]))
    ]
    verifier.close()

    out = {
        "batch": {"groups": args.groups, "group_size": args.size, "math_verify_workers": args.workers},
        "seconds_per_call": {"ours_lockstep_batched": t_ours, "peer_one_compare_per_pair": t_peer},
        "speedup_peer_over_ours": t_peer / t_ours,
        "label_accuracy": {
            "equivalence_vote": sum(bool(c) for c in eq_correct) / len(first),
            "string_vote_ttrl": sum(str_correct) / len(first),
        },
        "groups_where_labels_differ": sum(a != b for a, b in zip(eq_labels, str_labels)),
    }
    path = Path(__file__).parent / "results" / "majority_vote.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
