"""`OpenRLHFReward`: OpenRLHF's ``reward_func(queries, prompts, labels)`` contract and returned dict."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import MajorityVote, SelfCertainty
from weakreward.adapters.openrlhf import OpenRLHFReward, split_query
from weakreward.models import char_tokenizer
from weakreward.rewards.base import Verdict, Verifier
from weakreward.rewards.exact_match import ExactMatch
from weakreward.rewards.noise import NoisyReward


class LastDigit(Verifier):
    name = "last_digit"

    def extract(self, completion: str) -> str | None:
        digits = [c for c in completion if c.isdigit()]
        return digits[-1] if digits else None

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        return [Verdict(g == a, "") for g, a in zip(golds, answers)]


def chat_batch(questions: dict[str, str], responses: Sequence[str], n: int) -> tuple[list[str], list[str], list[str]]:
    """What OpenRLHF passes: the templated prompt, the decoded prompt + response (special tokens kept,
    EOS at the end), and the ``--label_key`` column; each prompt ``n`` times in a row."""
    tok = char_tokenizer()
    queries, prompts, labels = [], [], []
    for k, (question, label) in enumerate(questions.items()):
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        for response in responses[k * n : (k + 1) * n]:
            prompts.append(prompt)
            queries.append(prompt + response + tok.eos_token)
            labels.append(label)
    return queries, prompts, labels


def merge_like_openrlhf(rewards_info: list[dict]) -> dict[str, torch.Tensor]:
    """OpenRLHF's ``update_samples_with_rewards``: concatenate every call's tensors key by key."""
    merged = {
        "rewards": torch.cat([info["rewards"] for info in rewards_info], dim=0),
        "scores": torch.cat([info["scores"] for info in rewards_info], dim=0),
    }
    for key in rewards_info[0]["extra_logs"]:
        merged[key] = torch.cat([info["extra_logs"][key] for info in rewards_info], dim=0)
    return merged


def test_call_shape_and_returned_dict() -> None:
    questions = {"2+2=?": "4", "3+4=?": '["7"]'}
    responses = [r"\boxed{4}", "5", r"so \boxed{7}", ""]
    queries, prompts, labels = chat_batch(questions, responses, n=2)
    fn = ExactMatch().as_openrlhf()
    out = fn(queries, prompts, labels)
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].dtype == torch.float32 and out["rewards"].shape == (4,)
    expected = ExactMatch().score(responses, references=["4", "4", "7", "7"]).scores
    np.testing.assert_array_equal(out["rewards"].numpy(), expected)
    assert torch.equal(out["scores"], out["rewards"])
    assert all(v.shape == (4,) and v.dtype == torch.float32 for v in out["extra_logs"].values())
    assert out["extra_logs"]["exact_match/scored"].tolist() == [1.0] * 4


def test_calls_merge_as_openrlhf_merges_them() -> None:
    fn = NoisyReward(ExactMatch(), flip=0.5, seed=2).as_openrlhf()
    infos = [fn(["p1", "p2"], ["p", "p"], ["1", "1"]), fn(["p1"], ["p"], ["2"])]
    merged = merge_like_openrlhf(infos)
    assert merged["rewards"].shape == (3,)
    name = fn.__name__
    assert set(merged) >= {f"{name}/flipped", f"{name}/clean", f"{name}/scored"}
    assert merged[f"{name}/clean"].tolist() == [1.0, 0.0, 0.0]
    flipped = merged[f"{name}/flipped"].bool()
    np.testing.assert_array_equal(
        merged["rewards"].numpy(), torch.where(flipped, 1 - merged[f"{name}/clean"], merged[f"{name}/clean"]).numpy()
    )


@settings(max_examples=60, deadline=None)
@given(pads=st.integers(0, 3), prompt=st.text("bxy?:\n ", min_size=1, max_size=8), response=st.text(max_size=12))
def test_split_query_returns_the_response(pads: int, prompt: str, response: str) -> None:
    assert split_query("<pad>" * pads + prompt + response, prompt) == response


def test_split_query_without_the_prompt_keeps_the_whole_query() -> None:
    assert split_query("an answer", "another prompt") == "an answer"


def test_nan_becomes_nan_score_and_is_logged_as_unscored() -> None:
    out = ExactMatch().as_openrlhf(nan_score=-0.5)(["q1", "q1"], ["q", "q"], ["1", None])
    assert out["rewards"].tolist() == [1.0, -0.5]
    assert out["extra_logs"]["exact_match/scored"].tolist() == [1.0, 0.0]


def test_a_group_reward_is_refused_when_the_adapter_is_built() -> None:
    with pytest.raises(ValueError, match=r"one completion at a time.*GroupRewardManager"):
        MajorityVote(LastDigit()).as_openrlhf()


def test_token_stats_reward_raises_at_construction() -> None:
    with pytest.raises(ValueError, match="token_stats"):
        SelfCertainty().as_openrlhf()


@pytest.mark.parametrize("kwargs, message", [({"group_size": 0}, "group_size"), ({"nan_score": math.inf}, "nan_score")])
def test_bad_configuration_raises_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenRLHFReward(ExactMatch(), **kwargs)


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="2 queries, 1 prompts"):
        ExactMatch().as_openrlhf()(["a", "b"], ["a"], ["1", "1"])


def test_pickle_round_trip_gives_a_working_equal_callable() -> None:
    fn = NoisyReward(ExactMatch(), flip=0.5, seed=5).as_openrlhf(group_size=1)
    copy = pickle.loads(pickle.dumps(fn))
    assert isinstance(copy, OpenRLHFReward) and copy.__name__ == fn.__name__ and copy.group_size == 1
    args = (["p1", "p2", "p1"], ["p", "p", "p"], ["1", "1", "1"])
    for _ in range(2):  # the noise streams advance together
        first, second = fn(*args), copy(*args)
        assert torch.equal(first["rewards"], second["rewards"])
        assert first["extra_logs"].keys() == second["extra_logs"].keys()
