"""`TRLReward`: TRL's reward-function contract, and a real `trl.GRPOTrainer` training with our rewards."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import MajorityVote, SelfCertainty
from weakreward.adapters.trl import TRLReward
from weakreward.rewards.base import Reward, RewardResult, Verdict, Verifier
from weakreward.rewards.exact_match import ExactMatch
from weakreward.rewards.noise import NoisyReward
from weakreward.rollouts import Rollouts


class LastDigit(Verifier):
    """The last digit in the completion is the answer; equal strings match (cheap, no processes)."""

    name = "last_digit"

    def extract(self, completion: str) -> str | None:
        digits = [c for c in completion if c.isdigit()]
        return digits[-1] if digits else None

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        return [Verdict(g == a, "match" if g == a else "mismatch") for g, a in zip(golds, answers)]


class Spy(Reward):
    """Delegates to ``inner`` and records every `Rollouts` it scores."""

    def __init__(self, inner: Reward) -> None:
        self.inner = inner
        self.seen: list[Rollouts] = []

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return self.inner.needs

    @property
    def sees_groups(self) -> bool:
        return self.inner.sees_groups

    def compute(self, rollouts: Rollouts) -> RewardResult:
        self.seen.append(rollouts)
        return self.inner.compute(rollouts)


class HalfNaN(Reward):
    """NaN for completions that contain "?", else the completion's length."""

    name = "half_nan"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        return RewardResult([math.nan if "?" in c else float(len(c)) for c in rollouts.completions])


def as_list(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


# -- the call contract ---------------------------------------------------------------------------


def test_plain_and_conversational_completions_score_the_assistant_text() -> None:
    spy = Spy(ExactMatch())
    fn = spy.as_trl()
    prompts = [[{"role": "user", "content": "2+2?"}]] * 2
    completions = [[{"role": "assistant", "content": r"\boxed{4}"}], [{"role": "assistant", "content": "5"}]]
    assert fn(prompts=prompts, completions=completions, answer=["4", "4"]) == [1.0, 0.0]
    assert spy.seen[0].completions == (r"\boxed{4}", "5")
    assert fn(prompts=["2+2?"] * 2, completions=[r"\boxed{4}", "4"], answer=["4", "5"]) == [1.0, 0.0]


def test_nan_scores_become_none() -> None:
    out = HalfNaN().as_trl()(prompts=["p"] * 3, completions=["ab", "a?", "abc"])
    assert out == [2.0, None, 3.0]


def test_reference_column_gives_references_and_other_columns_become_extras() -> None:
    spy = Spy(ExactMatch())
    fn = spy.as_trl(reference_column="solution")
    fn(
        prompts=["a", "a", "b", "b"],
        completions=["1", "2", "3", "4"],
        completion_ids=[[1], [2], [3], [4]],
        solution=["1", ["2", "x"], float("nan"), None],
        difficulty=[0.5, 0.5, 0.9, 0.9],
        trainer_state=object(),
        log_metric=lambda name, value: None,
    )
    seen = spy.seen[0]
    assert seen.references == ("1", "2", None, None)
    assert dict(seen.extras) == {"difficulty": (0.5, 0.5, 0.9, 0.9)}
    assert seen.group_ids == ("a", "a", "b", "b")


def test_missing_reference_column_raises_naming_it() -> None:
    fn = ExactMatch().as_trl(reference_column="gold")
    with pytest.raises(ValueError, match="'gold'.*answer"):
        fn(prompts=["p"], completions=["1"], answer=["1"])


def test_reward_without_references_needs_no_reference_column() -> None:
    assert HalfNaN().as_trl()(prompts=["p"], completions=["abcd"]) == [4.0]


def test_token_stats_reward_raises_at_construction_naming_the_alternatives() -> None:
    with pytest.raises(ValueError, match="token_stats_from_logits.*GRPOTrainer"):
        SelfCertainty().as_trl()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"reference_column": ""}, "reference_column"), ({"num_generations": 0}, "num_generations")],
)
def test_bad_configuration_raises_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TRLReward(ExactMatch(), **kwargs)


def test_name_defaults_to_the_reward_name_and_can_be_set() -> None:
    assert ExactMatch().as_trl().__name__ == "exact_match"
    assert ExactMatch().as_trl(name="acc").__name__ == "acc"


# -- groups -------------------------------------------------------------------------------------


def test_split_group_raises_for_a_group_reward() -> None:
    fn = MajorityVote(LastDigit()).as_trl(num_generations=4)
    with pytest.raises(ValueError, match="split.*per_device_train_batch_size"):
        fn(prompts=["a"] * 4 + ["b"] * 2, completions=["1"] * 6)
    # a per-completion reward does not care
    assert (
        ExactMatch().as_trl(num_generations=4)(prompts=["a"] * 3, completions=["1"] * 3, answer=["1"] * 3) == [1.0] * 3
    )


class FakeTrainer:
    """What `TRLReward` reads from the trainer behind TRL's ``log_metric`` callback."""

    class Model:
        training = True

    def __init__(self, num_generations: int, num_generations_eval: int | None = None) -> None:
        self.num_generations = num_generations
        self.num_generations_eval = num_generations_eval
        self.model = self.Model()
        self.metrics: dict[str, list[float]] = {}

    def _log_metric(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)


def test_group_size_is_read_from_the_calling_trainer() -> None:
    fn = MajorityVote(LastDigit()).as_trl()
    trainer = FakeTrainer(num_generations=3, num_generations_eval=2)
    with pytest.raises(ValueError, match="expected a multiple of 3"):
        fn(prompts=["a"] * 2 + ["b"] * 2, completions=["1"] * 4, log_metric=trainer._log_metric)
    trainer.model.training = False  # evaluation uses num_generations_eval
    assert fn(prompts=["a"] * 2 + ["b"] * 2, completions=["1", "2", "3", "3"], log_metric=trainer._log_metric) == [
        1.0,
        0.0,
        1.0,
        1.0,
    ]


def test_without_a_group_size_a_lone_completion_is_a_split_group() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MajorityVote(LastDigit()).as_trl()(prompts=["a", "a", "b"], completions=["1", "1", "2"])


def test_a_prompt_drawn_twice_forms_two_groups_when_the_group_size_is_known() -> None:
    spy = Spy(MajorityVote(LastDigit()))
    out = spy.as_trl(num_generations=2)(prompts=["a"] * 4, completions=["1", "1", "2", "3"])
    assert spy.seen[0].group_ids == ("a", "a", "a#2", "a#2")
    assert out == [1.0, 1.0, 1.0, 0.0]  # the second group's tie goes to its first-seen answer


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["p", "q", "r"]), st.text("0123456789ab", max_size=4)), min_size=1, max_size=12)
)
def test_scores_equal_the_reward_on_rollouts_grouped_by_prompt(pairs: list[tuple[str, str]]) -> None:
    """The adapter is the reward: any order of prompts gives the reward's own scores, groups by prompt."""
    prompts = [p for p, _ in pairs]
    completions = [c for _, c in pairs]
    vote = MajorityVote(LastDigit())
    out = vote.as_trl(num_generations=None)
    sizes = {p: prompts.count(p) for p in prompts}
    if min(sizes.values()) < 2:
        with pytest.raises(ValueError, match="split"):
            out(prompts=prompts, completions=completions)
        return
    expected = vote.score(completions, prompts=prompts).scores
    np.testing.assert_array_equal(as_list(out(prompts=prompts, completions=completions)), expected)


# -- logging ------------------------------------------------------------------------------------


def test_details_go_to_log_metric_and_log_extra() -> None:
    metrics: dict[str, float] = {}
    extra: dict[str, list] = {}
    fn = NoisyReward(ExactMatch(), flip=0.5, seed=1).as_trl(name="noisy")
    out = fn(
        prompts=["a"] * 4,
        completions=["1", "2", "1", "x"],
        answer=["1"] * 4,
        log_metric=lambda k, v: metrics.__setitem__(k, v),
        log_extra=lambda k, v: extra.__setitem__(k, v),
    )
    flipped = extra["noisy/flipped"]
    clean = extra["noisy/clean"]
    assert clean == [1.0, 0.0, 1.0, 0.0]
    assert as_list(out) == [1.0 - c if f else c for c, f in zip(clean, flipped)]
    assert metrics["rewards/noisy/flipped"] == pytest.approx(np.mean(flipped))
    assert "rewards/noisy/mean" not in metrics  # TRL logs the mean and std itself
    assert extra["noisy/exact_match/reason"] == ["match", "mismatch", "match", "mismatch"]


# -- pickling -----------------------------------------------------------------------------------


def test_pickle_round_trip_gives_a_working_equal_callable() -> None:
    fn = NoisyReward(ExactMatch(), flip=0.4, seed=3).as_trl(num_generations=2)
    copy = pickle.loads(pickle.dumps(fn))
    assert isinstance(copy, TRLReward) and copy.__name__ == fn.__name__
    kwargs = dict(prompts=["a", "a", "b", "b"], completions=["1", "2", "1", "1"], answer=["1"] * 4)
    assert copy(**kwargs) == fn(**kwargs)
    assert copy(**kwargs) == fn(**kwargs)  # the noise streams advance together


# -- a real TRL GRPOTrainer ---------------------------------------------------------------------


@pytest.mark.slow
def test_trl_grpo_trainer_trains_with_our_rewards_and_logs_what_they_compute(tmp_path) -> None:
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from transformers import TrainerCallback

    from weakreward.models import char_tokenizer, tiny_llama
    from weakreward.rewards.math_verifier import MathVerifier

    questions = {"1+1=": "2", "2+3=": "5", "4+4=": "8", "5+2=": "7"}
    dataset = datasets.Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": q}] for q in questions],
            "answer": list(questions.values()),
            "level": [1, 1, 2, 2],
        }
    )
    verifier = MathVerifier(workers=1)
    noisy = NoisyReward(verifier, flip=0.3, seed=7)
    vote = Spy(MajorityVote(LastDigit()))

    class Snapshot(TrainerCallback):
        """After each step: the prompts, completions, per-function rewards and extra columns TRL logged."""

        def __init__(self) -> None:
            self.steps: list[dict] = []
            self.trainer = None

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            logs = self.trainer._logs
            self.steps.append(
                {
                    "prompt": list(logs["prompt"]),
                    "completion": list(logs["completion"]),
                    "rewards": {k: list(v) for k, v in logs["rewards"].items()},
                    "extra": {k: list(v) for k, v in logs["extra"].items()},
                }
            )

    config = trl.GRPOConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        bf16=False,
        max_completion_length=8,
        num_generations=4,
        per_device_train_batch_size=8,  # two whole groups per device
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        save_strategy="no",
        seed=0,
    )
    tokenizer = char_tokenizer()
    snapshot = Snapshot()
    trainer = trl.GRPOTrainer(
        model=tiny_llama(tokenizer),
        processing_class=tokenizer,
        reward_funcs=[noisy.as_trl(), vote.as_trl()],
        args=config,
        train_dataset=dataset,
        callbacks=[snapshot],
    )
    snapshot.trainer = trainer
    try:
        trainer.train()
    finally:
        verifier.close()
    assert trainer.state.global_step == 2 and len(snapshot.steps) == 2

    # majority vote saw whole groups: two prompts × num_generations=4 in every call
    assert [sorted(map(len, r.groups().values())) for r in vote.seen] == [[4, 4], [4, 4]]

    # recompute with fresh, equal-seeded objects on the same completions, in the same call order
    fresh_verifier = MathVerifier(workers=1)
    fresh_noisy = NoisyReward(fresh_verifier, flip=0.3, seed=7).as_trl()
    fresh_vote = MajorityVote(LastDigit()).as_trl()
    flips = 0
    try:
        for step in snapshot.steps:
            answers = [questions[p[-1]["content"]] for p in step["prompt"]]
            extra: dict[str, list] = {}
            mine_noisy = fresh_noisy(
                prompts=step["prompt"],
                completions=step["completion"],
                answer=answers,
                log_extra=lambda k, v: extra.__setitem__(k, v),  # noqa: B023 (called within this iteration)
            )
            mine_vote = fresh_vote(prompts=step["prompt"], completions=step["completion"], answer=answers)
            np.testing.assert_allclose(step["rewards"][noisy.name], as_list(mine_noisy), equal_nan=True)
            np.testing.assert_allclose(step["rewards"]["majority_vote"], as_list(mine_vote), equal_nan=True)
            flips += sum(extra[f"{noisy.name}/flipped"])
            # the details TRL received through log_extra are ours too
            assert step["extra"][f"{noisy.name}/flipped"] == extra[f"{noisy.name}/flipped"]
    finally:
        fresh_verifier.close()
    assert flips > 0  # the noise did act on the logged rewards
    assert any(v == 1.0 for step in snapshot.steps for v in step["rewards"]["majority_vote"])  # votes were won
    logged = [h for h in trainer.state.log_history if f"rewards/{noisy.name}/mean" in h]
    assert len(logged) == 2 and all(f"rewards/{noisy.name}/flipped" in h for h in logged)
    assert all(r.extras["level"] for r in vote.seen)  # other dataset columns reached the reward
