"""Score completions with composed rewards: a verifier, a format bonus, a gate, noise, and majority vote.

Run: ``python examples/score_rewards.py`` (no model needed; ``--smoke`` is accepted and changes nothing,
this example is already fast).
"""

from __future__ import annotations

import argparse
import os

from weakreward import FormatReward, Gate, MajorityVote, MathVerifier, NoisyReward

# Two prompts, four sampled completions each (one GRPO group per prompt).
PROMPTS = ["What is 12 * 7?"] * 4 + ["Simplify 2/4."] * 4
COMPLETIONS = [
    "12 * 7 = 84, so the answer is \\boxed{84}.",
    "12 * 7 = 74. \\boxed{74}",
    "\\boxed{84}",
    "The answer is 48.",
    "2/4 = 1/2, so \\boxed{\\frac{1}{2}}.",
    "Dividing by 2: \\boxed{0.5}",
    "\\boxed{1/2}",
    "\\boxed{2}",
]
REFERENCES = ["84"] * 4 + ["1/2"] * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("WEAKREWARD_SMOKE") == "1",
        help="accepted for uniformity; this example is already tiny (or set WEAKREWARD_SMOKE=1)",
    )
    parser.parse_args()

    verifier = MathVerifier(workers=1)
    try:
        rewards = {
            # correctness plus a small bonus for a \boxed{} answer
            "verifier + 0.1 * format": verifier + 0.1 * FormatReward.boxed(),
            # correctness only counts when the format is right
            "gate(format, verifier)": Gate(FormatReward.boxed(), verifier),
            # the verifier with 30% of its verdicts flipped (seeded: the same every run)
            "noisy(verifier, 0.3)": NoisyReward(verifier, flip=0.3, seed=0),
            # label-free: agree with the group's majority answer (1/2, 0.5 and \frac12 are one vote)
            "majority vote": MajorityVote(verifier),
        }
        for label, reward in rewards.items():
            result = reward.score(COMPLETIONS, references=REFERENCES, prompts=PROMPTS)
            print(f"{label:<26} {reward.name}")
            print(f"{'':<26} scores {result.scores.tolist()}")
        vote = rewards["majority vote"].score(COMPLETIONS, references=REFERENCES, prompts=PROMPTS)
        print("majority pseudo-labels:", sorted(set(vote.details["pseudo_label"]), key=str))
        print("pseudo-label correct:  ", vote.details["label_correct"])
    finally:
        verifier.close()


if __name__ == "__main__":
    main()
