"""The contract's input side: Rollouts and TokenStats validate and select consistently."""

import pickle

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from weakreward import Rollouts, TokenStats
from weakreward.rollouts import prompt_key


def test_build_defaults_group_ids_to_prompt_text():
    r = Rollouts.build(["a", "b", "c"], prompts=["p", "q", "p"])
    assert r.group_ids == ("p", "q", "p")
    assert r.references == (None, None, None)
    assert r.groups() == {"p": [0, 2], "q": [1]}


def test_chat_prompts_group_by_canonical_json():
    msgs = [{"role": "user", "content": "1+1?"}]
    same = [{"content": "1+1?", "role": "user"}]
    r = Rollouts.build(["x", "y"], prompts=[msgs, same])
    assert len(r.groups()) == 1
    assert prompt_key(msgs) == prompt_key(same)


@pytest.mark.parametrize("column", ["prompts", "references", "group_ids"])
def test_length_mismatch_names_the_column(column):
    kwargs = {"prompts": ["p"] * 3, "references": ["1"] * 3, "group_ids": [0] * 3}
    kwargs[column] = kwargs[column][:2]
    with pytest.raises(ValueError, match=column):
        Rollouts(completions=["a", "b", "c"], **kwargs)


def test_extras_length_mismatch_names_the_key():
    with pytest.raises(ValueError, match="difficulty"):
        Rollouts.build(["a", "b"], difficulty=[1])


def test_non_string_completion_is_rejected_with_its_index():
    with pytest.raises(TypeError, match=r"completions\[1\]"):
        Rollouts.build(["a", None])  # type: ignore[list-item]


def test_unhashable_group_id_is_rejected():
    with pytest.raises(TypeError, match="group_ids"):
        Rollouts.build(["a"], group_ids=[["not", "hashable"]])


def test_token_stats_rows_must_match_completions():
    ts = TokenStats.from_ragged([[-1.0]], [[0.5]], [[0.1]])
    with pytest.raises(ValueError, match="token_stats"):
        Rollouts.build(["a", "b"], token_stats=ts)


def test_token_stats_shape_mismatch_names_the_field():
    with pytest.raises(ValueError, match="entropy"):
        TokenStats(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))


def test_masked_mean_ignores_padding_and_is_nan_when_empty():
    ts = TokenStats.from_ragged([[-1.0, -3.0], [], [-2.0]], [[0, 0], [], [0]], [[0, 0], [], [0]])
    means = ts.masked_mean("logprobs")
    assert means[0].item() == -2.0
    assert torch.isnan(means[1])
    assert means[2].item() == -2.0


@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.data())
def test_select_keeps_columns_aligned(gids, data):
    n = len(gids)
    ts = TokenStats.from_ragged([[float(i)] for i in range(n)], [[0.0]] * n, [[0.0]] * n)
    r = Rollouts.build(
        [f"c{i}" for i in range(n)],
        references=[str(i) for i in range(n)],
        group_ids=gids,
        token_stats=ts,
        idx=list(range(n)),
    )
    idx = data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n))
    s = r.select(idx)
    assert list(s.completions) == [f"c{i}" for i in idx]
    assert list(s.references) == [str(i) for i in idx]
    assert list(s.extras["idx"]) == idx
    assert list(s.group_ids) == [gids[i] for i in idx]
    assert s.token_stats is not None and s.token_stats.logprobs[:, 0].tolist() == [float(i) for i in idx]


def test_rollouts_pickle_round_trip():
    r = Rollouts.build(["a"], prompts=[[{"role": "user", "content": "q"}]], references=["1"])
    assert pickle.loads(pickle.dumps(r)) == r
