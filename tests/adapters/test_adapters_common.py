"""The helpers the three adapters share (`weakreward.adapters._common`)."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from weakreward.adapters._common import completion_text, dedupe_groups, numeric_columns, reference_text, scalar_columns


def test_completion_text_of_messages_keeps_only_assistant_text() -> None:
    completion = [
        {"role": "assistant", "content": "step 1"},
        {"role": "tool", "content": "42"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "so"}, {"type": "image"}, {"type": "text", "text": "4"}],
        },
    ]
    assert completion_text(completion) == "step 1\nso\n4"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    assert completion_text(None) == "" and completion_text(3) == ""


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_a_json_list_of_strings_gives_its_first_entry(answers: list[str]) -> None:
    assert reference_text(json.dumps(answers), parse_json_list=True) == answers[0]
    assert reference_text(json.dumps(answers)) == json.dumps(answers)  # only when asked


@given(st.lists(st.integers(), min_size=1, max_size=3))
def test_a_json_list_of_numbers_is_kept_as_text(values: list[int]) -> None:
    text = json.dumps(values)
    assert reference_text(text, parse_json_list=True) == text


def test_missing_references() -> None:
    assert (
        reference_text(None) is None and reference_text(math.nan) is None and reference_text(np.float32("nan")) is None
    )
    assert reference_text([]) is None and reference_text(np.array(["a", "b"])) == "a"


@given(st.lists(st.sampled_from("abc"), max_size=20), st.integers(1, 4))
def test_dedupe_groups_splits_each_key_into_blocks_of_the_group_size(keys: list[str], size: int) -> None:
    groups = dedupe_groups(keys, size)
    for gid in set(groups):
        members = [k for k, g in zip(keys, groups) if g == gid]
        assert len(set(members)) == 1 and len(members) <= size
    assert dedupe_groups(keys, None) == keys


def test_detail_columns_are_filtered_by_type() -> None:
    details = {"a": [1, np.int64(2)], "b": ["x", None], "c": [[1], [2]], "d": [True, None], "e": [None, None]}
    assert scalar_columns(details) == {"a": [1, 2], "b": ["x", None], "d": [True, None], "e": [None, None]}
    numeric = numeric_columns(details)
    assert numeric["a"] == [1.0, 2.0] and numeric["d"][0] == 1.0 and math.isnan(numeric["d"][1])
    assert set(numeric) == {"a", "d"}
