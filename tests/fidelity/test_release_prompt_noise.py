"""Item 11: prompt-level noise is keyed by the prompt itself, and it is not a wrong label.

``NoisyReward(level="prompt")`` inverts every reward of a flipped prompt's group; the paper's wrong label
``W`` (``corrupt_labels``) rewards only the completions that answer ``W``.
"""

from __future__ import annotations

from weakreward import NoisyReward, Rollouts
from weakreward.data import Problem, corrupt_labels

GROUP = ["\\boxed{7}", "\\boxed{9}", "\\boxed{9}", "\\boxed{3}"]  # truth 7, the model's common mistake 9


def test_a_flipped_prompt_rewards_every_wrong_answer_but_a_wrong_label_only_its_own(math_verifier):
    noisy = NoisyReward(math_verifier, flip=1.0, level="prompt", seed=0)
    flipped = noisy.score(GROUP, prompts=["q"] * 4, references=["7"] * 4)
    assert flipped.scores.tolist() == [0.0, 1.0, 1.0, 1.0]
    (problem,) = corrupt_labels([Problem("q", "7")], 1.0, wrong_answer=lambda p: "9")
    assert problem.answer == "9" and problem.meta["original_answer"] == "7"
    wrong_label = math_verifier.score(GROUP, references=[problem.answer] * 4)
    assert wrong_label.scores.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_the_key_is_the_prompt_not_the_row_extras(math_verifier):
    noisy = NoisyReward(math_verifier, flip=0.5, level="prompt", seed=11)
    prompts = [f"problem {i}" for i in range(40) for _ in range(2)]
    completions = ["\\boxed{1}"] * 80
    references = ["1"] * 80
    # verl-style per-completion extras (different for each completion and each step) change nothing.
    a = noisy(Rollouts.build(completions, prompts=prompts, references=references, global_steps=list(range(80))))
    b = noisy(
        Rollouts.build(
            completions, prompts=prompts, references=references, global_steps=[7] * 80, group=list(range(80))
        )
    )
    assert a.scores.tolist() == b.scores.tolist()
    # Both completions of a prompt always share the draw, and about half the prompts flip.
    assert all(a.scores[i] == a.scores[i + 1] for i in range(0, 80, 2))
    assert 10 <= int((a.scores == 0).sum()) // 2 <= 30


def test_chat_messages_key_by_their_canonical_text(math_verifier):
    noisy = NoisyReward(math_verifier, flip=0.5, level="prompt", seed=3)
    one = [[{"role": "user", "content": f"q{i}"}] for i in range(30)]
    other = [[{"content": f"q{i}", "role": "user"}] for i in range(30)]  # same messages, other key order
    kw = dict(references=["1"] * 30)
    a = noisy(Rollouts.build(["\\boxed{1}"] * 30, prompts=one, **kw))
    b = noisy(Rollouts.build(["\\boxed{1}"] * 30, prompts=other, **kw))
    assert a.scores.tolist() == b.scores.tolist()
