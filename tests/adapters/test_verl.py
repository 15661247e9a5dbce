"""`VerlReward`: rows of the paper's verl files, scored through the call shapes of verl's naive and batch
reward managers, without verl (the same paths against the real verl 0.9 are in test_verl_loop.py)."""

from __future__ import annotations

import math
import pickle
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weakreward import MajorityVote, SelfCertainty
from weakreward.adapters.verl import VerlReward
from weakreward.data.parquet import decode_ground_truth, load_verl_parquet
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rewards.exact_match import ExactMatch
from weakreward.rewards.math_verifier import MathVerifier
from weakreward.rewards.noise import NoisyReward
from weakreward.rollouts import Rollouts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FILES = [
    "verl_rows_math.parquet",
    "verl_rows_math_noisy.parquet",
    "verl_rows_graph.parquet",
    "verl_rows_science_map.parquet",
]
N = 4  # rollout.n


# -- verl's reward managers, reduced to how they call compute_score --------------------------------


def naive_manager(compute_score: Callable, rows: Sequence[dict], responses: Sequence[str]) -> tuple[list, dict]:
    """NaiveRewardManager.__call__: one keyword call per completion; reads ``score``, keeps the other keys."""
    rewards: list[float] = []
    reward_extra_info: dict[str, list] = defaultdict(list)
    for row, response_str in zip(rows, responses):
        extra_info = row.get("extra_info", {})
        if isinstance(extra_info, dict):  # recent verl adds the turn count to a dict extra_info
            extra_info = dict(extra_info, num_turns=None)
        score = compute_score(
            data_source=row["data_source"],
            solution_str=response_str,
            ground_truth=row["reward_model"]["ground_truth"],
            extra_info=extra_info,
        )
        if isinstance(score, dict):
            reward = score["score"]
            for key, value in score.items():
                reward_extra_info[key].append(value)
        else:
            reward = score
        rewards.append(reward)
    return rewards, dict(reward_extra_info)


def batch_manager(compute_score: Callable, rows: Sequence[dict], responses: Sequence[str]) -> tuple[list, dict]:
    """BatchRewardManager.verify + __call__: one keyword call for the batch (numpy object arrays, as in
    verl's DataProto.non_tensor_batch); reads ``score`` of each returned dict."""
    data_sources = np.array([row["data_source"] for row in rows], dtype=object)
    ground_truths = [row["reward_model"].get("ground_truth", None) for row in rows]
    extras = np.empty(len(rows), dtype=object)
    extras[:] = [row.get("extra_info") for row in rows]
    scores = compute_score(
        data_sources=data_sources, solution_strs=list(responses), ground_truths=ground_truths, extra_infos=extras
    )
    rewards: list[float] = []
    reward_extra_info: dict[str, list] = defaultdict(list)
    for score in scores:
        if isinstance(score, dict):
            rewards.append(score["score"])
            for key, value in score.items():
                reward_extra_info[key].append(value)
        else:
            rewards.append(score)
    return rewards, dict(reward_extra_info)


def rollout(rows: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """verl's ``batch.repeat(n, interleave=True)`` with N responses per row: the label boxed, a wrong
    boxed answer, the true label of a corrupted row (if any) in prose, and nothing."""
    out_rows, responses = [], []
    for row in rows:
        answer, _ = decode_ground_truth(row["reward_model"]["ground_truth"])
        info = row.get("extra_info")
        original = info.get("original_ground_truth") if isinstance(info, dict) else None
        true = decode_ground_truth(original)[0] if original else answer
        for response in (f"so the answer is \\boxed{{{answer}}}", r"\boxed{-12345}", f"I get {true}.", ""):
            out_rows.append(row)
            responses.append(response)
    return out_rows, responses


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1)
    yield v
    v.close()


@pytest.fixture(scope="module", params=FILES)
def rows(request) -> list[dict]:
    return load_verl_parquet(FIXTURES / request.param, raw=True)


def references(rows: Sequence[dict]) -> list[str | None]:
    return [decode_ground_truth(row["reward_model"]["ground_truth"])[0] for row in rows]


# -- scores match the reward itself ---------------------------------------------------------------


def test_naive_manager_scores_equal_the_reward_called_directly(rows, verifier) -> None:
    batch_rows, responses = rollout(rows)
    rewards, extra = naive_manager(verifier.as_verl(), batch_rows, responses)
    direct = verifier.score(responses, references=references(batch_rows))
    np.testing.assert_array_equal(rewards, direct.scores)
    assert rewards[::N] == [1.0] * len(rows) and rewards[1::N] == [0.0] * len(rows)
    assert extra["reason"] == list(direct.details["reason"])
    assert all(len(v) == len(responses) for v in extra.values())  # verl's per-key lists stay aligned


def test_batch_manager_scores_equal_the_reward_called_directly(rows, verifier) -> None:
    batch_rows, responses = rollout(rows)
    rewards, extra = batch_manager(verifier.as_verl(), batch_rows, responses)
    direct = verifier.score(responses, references=references(batch_rows))
    np.testing.assert_array_equal(rewards, direct.scores)
    assert extra["scored"] == [True] * len(responses)
    assert extra["answer"] == ["" if a is None else a for a in direct.details["answer"]]


def test_the_paper_corrupted_label_is_what_gets_scored(verifier) -> None:
    rows = load_verl_parquet(FIXTURES / "verl_rows_math_noisy.parquet", raw=True)
    corrupted = [r for r in rows if r["extra_info"]["original_ground_truth"] != r["reward_model"]["ground_truth"]]
    assert corrupted  # the fixture holds rows whose label was replaced
    batch_rows, responses = rollout(corrupted)
    rewards, _ = batch_manager(verifier.as_verl(), batch_rows, responses)
    assert rewards[2::N] == [0.0] * len(corrupted)  # the truly correct answer loses against a wrong label


def test_majority_vote_in_the_batch_shape_groups_by_extra_info(rows, verifier) -> None:
    vote = MajorityVote(verifier)
    batch_rows, responses = rollout(rows)
    # shuffle the batch as verl's sequence-length balancing does: groups must not rely on order
    order = np.random.default_rng(0).permutation(len(responses)).tolist()
    batch_rows = [batch_rows[i] for i in order]
    responses = [responses[i] for i in order]
    spy_seen: list[Rollouts] = []

    class Spy(Reward):
        name, needs = "majority_vote", frozenset()
        sees_groups = True

        def compute(self, rollouts: Rollouts) -> RewardResult:
            spy_seen.append(rollouts)
            return vote.compute(rollouts)

    rewards, extra = batch_manager(Spy().as_verl(group_size=N), batch_rows, responses)
    row_of = [id(r) for r in batch_rows]
    direct = vote.score(responses, group_ids=row_of)
    np.testing.assert_array_equal(rewards, direct.scores)
    assert sorted(map(len, spy_seen[0].groups().values())) == [N] * len(rows)
    assert extra["pseudo_label"] == ["" if p is None else p for p in direct.details["pseudo_label"]]


def test_a_group_reward_called_per_sample_raises_naming_the_group_manager(verifier) -> None:
    rows = load_verl_parquet(FIXTURES / "verl_rows_math.parquet", raw=True)
    with pytest.raises(ValueError, match="GroupRewardManager"):
        naive_manager(MajorityVote(verifier).as_verl(), rows, ["1"] * len(rows))
    with pytest.raises(ValueError, match="GroupRewardManager"):
        MajorityVote(verifier).as_verl(batch=False)


def test_a_split_group_raises_when_the_group_size_is_known(verifier) -> None:
    rows = load_verl_parquet(FIXTURES / "verl_rows_math.parquet", raw=True)
    batch_rows, responses = rollout(rows)
    with pytest.raises(ValueError, match="split"):
        batch_manager(MajorityVote(verifier).as_verl(group_size=N), batch_rows[:-1], responses[:-1])


# -- ground truths, NaN and details ---------------------------------------------------------------


class Echo(Reward):
    """1 where the completion is the reference; NaN where there is no reference; reports the reference."""

    name, needs = "echo", frozenset({"references"})

    def compute(self, rollouts: Rollouts) -> RewardResult:
        scores = [math.nan if r is None else float(c == r) for c, r in zip(rollouts.completions, rollouts.references)]
        return RewardResult(
            scores, {"reference": list(rollouts.references), "score": scores, "blob": [[1]] * len(rollouts)}
        )


@pytest.mark.parametrize(
    "ground_truth, expected",
    [('["18"]', "18"), ('["18", "eighteen"]', "18"), ("[0, 1]", "[0, 1]"), ("7", "7"), (7, "7"), (["x", "y"], "x")],
)
def test_ground_truth_forms(ground_truth: Any, expected: str) -> None:
    out = Echo().as_verl()(data_source="d", solution_str=expected, ground_truth=ground_truth, extra_info=None)
    assert out["score"] == 1.0 and out["reference"] == expected


def test_nan_becomes_nan_score_and_scored_false() -> None:
    out = Echo().as_verl(nan_score=-1.0)(data_source="d", solution_str="1", ground_truth=None, extra_info={})
    assert out["score"] == -1.0 and out["scored"] is False and out["reference"] == ""
    # a detail called "score" does not shadow the score; non-scalar details are left out
    assert out["detail/score"] != out["detail/score"] and "blob" not in out


def test_extra_info_columns_reach_the_reward_as_extras() -> None:
    seen: list[Rollouts] = []

    class Look(Reward):
        name = "look"

        def compute(self, rollouts: Rollouts) -> RewardResult:
            seen.append(rollouts)
            return RewardResult(np.zeros(len(rollouts)))

    graph = load_verl_parquet(FIXTURES / "verl_rows_graph.parquet", raw=True)[0]
    science = load_verl_parquet(FIXTURES / "verl_rows_science_map.parquet", raw=True)[0]
    naive_manager(Look().as_verl(), [graph, science], ["", ""])
    assert seen[0].extras["solution"] == (7,)  # parsed from the JSON string
    assert seen[0].extras["data_source"] == ("graph",)
    assert seen[1].extras["index"] == ("4",)  # from the Arrow map's key/value pairs


def test_graph_rows_without_an_index_group_by_their_content(verifier) -> None:
    rows = load_verl_parquet(FIXTURES / "verl_rows_graph.parquet", raw=True)
    batch_rows, responses = rollout(rows)
    seen: list[Rollouts] = []
    vote = MajorityVote(verifier)

    class Spy(Reward):
        name, needs, sees_groups = "spy", frozenset(), True

        def compute(self, rollouts: Rollouts) -> RewardResult:
            seen.append(rollouts)
            return vote.compute(rollouts)

    batch_manager(Spy().as_verl(), batch_rows, responses)
    groups = list(seen[0].groups().values())
    assert groups == [list(range(i, i + N)) for i in range(0, len(responses), N)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch": "yes"}, "batch"),
        ({"group_keys": "index"}, "group_keys"),
        ({"group_size": 0}, "group_size"),
        ({"nan_score": math.nan}, "nan_score"),
    ],
)
def test_bad_configuration_raises_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VerlReward(ExactMatch(), **kwargs)


def test_token_stats_reward_raises_at_construction() -> None:
    with pytest.raises(ValueError, match="token_stats"):
        SelfCertainty().as_verl()


def test_batch_only_adapter_rejects_per_sample_calls_and_vice_versa() -> None:
    with pytest.raises(ValueError, match="GroupRewardManager"):
        ExactMatch().as_verl(batch=True)(data_source="d", solution_str="1", ground_truth="1")
    with pytest.raises(ValueError, match="reward_manager.name=naive"):
        ExactMatch().as_verl(batch=False)(
            data_sources=["d"], solution_strs=["1"], ground_truths=["1"], extra_infos=[None]
        )


def test_pickle_round_trip_gives_a_working_equal_callable(rows) -> None:
    fn = NoisyReward(ExactMatch(), flip=0.5, seed=11).as_verl(batch=True)
    copy = pickle.loads(pickle.dumps(fn))
    assert isinstance(copy, VerlReward)
    batch_rows, responses = rollout(rows)
    assert batch_manager(copy, batch_rows, responses) == batch_manager(fn, batch_rows, responses)


def test_prompt_level_noise_is_fixed_per_row_in_both_call_shapes() -> None:
    """verl passes no prompt; the adapter's per-row stand-in keeps prompt-level noise fixed per row."""
    rows = [row for name in FILES for row in load_verl_parquet(FIXTURES / name, raw=True)]
    batch_rows, responses = rollout(rows * 2)  # each row twice: 8 rollouts per distinct row
    noisy = NoisyReward(ExactMatch(), flip=0.5, level="prompt", seed=4)
    _, naive = naive_manager(noisy.as_verl(), batch_rows, responses)
    _, batch = batch_manager(noisy.as_verl(), batch_rows, responses)
    assert naive["flipped"] == batch["flipped"]
    by_row: dict[int, set] = defaultdict(set)
    for row, flipped in zip(batch_rows, batch["flipped"]):
        by_row[id(row)].add(flipped)
    assert all(len(v) == 1 for v in by_row.values())
    assert {v for (v,) in by_row.values()} == {True, False}  # and it differs between rows


def test_a_pickled_math_verifier_adapter_starts_its_own_workers(verifier) -> None:
    copy = pickle.loads(pickle.dumps(verifier.as_verl()))
    try:
        rows = load_verl_parquet(FIXTURES / "verl_rows_math.parquet", raw=True)
        batch_rows, responses = rollout(rows)
        assert (
            naive_manager(copy, batch_rows, responses)[0] == naive_manager(verifier.as_verl(), batch_rows, responses)[0]
        )
    finally:
        copy.reward.close()
