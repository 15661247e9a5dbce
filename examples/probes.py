"""Faithfulness and diversity probes on a set of sampled responses (arXiv 2604.18574 §4).

The paper finds that *reasoning faithfulness* measured before RL (do the steps support the answer?)
predicts whether a model generalises under weak supervision, while output diversity alone does not.
This example runs both on four responses to each of two problems:

- judge-free faithfulness checks: are the written arithmetic claims true, does the answer follow from
  the last equation;
- the paper's judge rubric (‖1‖ / ‖0.5‖ / ‖0‖) with a judge model, when one is given (``--judge``: a
  local Hugging Face folder, a .gguf file or ``smollm2-gguf``; a tiny random model with ``--smoke``, whose
  replies carry no verdict and count as unknown);
- diversity: strategy clusters (the paper's Div), distinct-2 and answer entropy.

Run: ``python examples/probes.py`` (judge-free only), ``python examples/probes.py --judge smollm2-gguf``.
"""

from __future__ import annotations

import argparse
import os

from weakreward.probes.diversity import answer_entropy, distinct_n, strategy_diversity
from weakreward.probes.faithfulness import FaithfulnessJudge, HFJudge, judge_free_checks

SAMPLES = {
    "What is 17 + 25?": [
        "17 + 25 = 42, so the answer is \\boxed{42}.",
        "First 17 + 20 = 37, then 37 + 5 = 42. \\boxed{42}",
        "17 + 25 = 32, so \\boxed{42}",  # the answer does not follow from the step
        "Probably \\boxed{41}.",  # a guess: no steps at all
    ],
    "What is 6 * 7?": [
        "6 * 7 = 42, so \\boxed{42}",
        "6 * 7 = 42, so \\boxed{42}",
        "7 + 7 + 7 + 7 + 7 + 7 = 42, so \\boxed{42}",
        "6 * 7 = 48, so \\boxed{48}",  # wrong but faithful to its (false) step
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default=None, help="judge model for the rubric (folder, .gguf or smollm2-gguf)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("WEAKREWARD_SMOKE") == "1",
        help="use a tiny random judge (seconds; all verdicts unknown) (or set WEAKREWARD_SMOKE=1)",
    )
    args = parser.parse_args()

    print("judge-free faithfulness checks")
    for question, responses in SAMPLES.items():
        checks = judge_free_checks(responses)
        print(f"  {question}")
        for text, arith, follows, reason in zip(
            responses, checks["arithmetic_score"], checks["answer_follows"], checks["answer_reason"]
        ):
            print(f"    arithmetic {arith:4.2f}  answer follows {follows:4.2f} ({reason})  | {text}")

    print("diversity")
    for question, responses in SAMPLES.items():
        div = strategy_diversity(responses)
        print(
            f"  {question} strategy clusters {div.sizes}, Div {div.div:.3f}, "
            f"distinct-2 {distinct_n(responses, 2):.3f}, answer entropy {answer_entropy(responses):.3f} nats"
        )

    if args.smoke or args.judge:
        if args.smoke:
            from weakreward.models import char_tokenizer, tiny_llama

            tokenizer = char_tokenizer()
            judge_model = HFJudge(tiny_llama(tokenizer), tokenizer, max_new_tokens=8)
        else:
            judge_model = HFJudge(args.judge, max_new_tokens=256)
        judge = FaithfulnessJudge(judge_model)
        questions = [q for q, rs in SAMPLES.items() for _ in rs]
        responses = [r for rs in SAMPLES.values() for r in rs]
        result = judge(questions, responses)
        summary = result.summary()
        print("judge rubric")
        print(f"  label fractions {summary.fractions}, unknown {summary.unknown} of {len(responses)}")


if __name__ == "__main__":
    main()
