"""Problem records: normalisation, from_dict/to_dict, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward.data import Problem
from weakreward.data.problem import as_problems


def test_from_dict_puts_unknown_keys_in_meta_and_explicit_meta_wins():
    p = Problem.from_dict({"prompt": "q", "answer": "1", "source": "a", "meta": {"source": "b", "k": 1}})
    assert p.meta == {"source": "b", "k": 1}
    assert Problem.from_dict(p) is p


def test_numpy_array_of_messages_becomes_a_list_of_dicts():
    messages = np.array([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], dtype=object)
    p = Problem(messages, "1")
    assert p.prompt == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert p.question == "u"
    assert p.key == '[{"content": "s", "role": "system"}, {"content": "u", "role": "user"}]'


def test_difficulty_drops_nulls_and_turns_whole_floats_into_ints():
    p = Problem("q", difficulty={"a": 13.0, "b": None, "c": np.int32(4), "d": float("nan")})
    assert p.difficulty == {"a": 13, "c": 4}
    assert all(type(v) is int for v in p.difficulty.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": 3}, "Problem.prompt"),
        ({"prompt": [{"role": "user"}]}, r"Problem.prompt\[0\]"),
        ({"prompt": ["text"]}, r"Problem.prompt\[0\]"),
        ({"prompt": [{"role": "user", "content": None}]}, r"Problem.prompt\[0\] has a null"),
        ({"prompt": []}, "empty"),
        ({"prompt": "q", "answer": 4}, "Problem.answer"),
        ({"prompt": "q", "difficulty": {"m": 2.5}}, r"Problem.difficulty\['m'\]"),
        ({"prompt": "q", "difficulty": {"m": "hard"}}, r"Problem.difficulty\['m'\]"),
        ({"prompt": "q", "meta": [1]}, "Problem.meta"),
    ],
)
def test_bad_fields_raise_naming_the_field(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Problem(**kwargs)


def test_from_dict_without_prompt_names_it():
    with pytest.raises(ValueError, match="'prompt'"):
        Problem.from_dict({"answer": "1"})


def test_as_problems_rejects_a_single_mapping():
    with pytest.raises(TypeError):
        as_problems({"prompt": "q"})  # type: ignore[arg-type]


@given(
    prompt=st.one_of(
        st.text(),
        st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": st.text()}), min_size=1
        ),
    ),
    answer=st.one_of(st.none(), st.text()),
    difficulty=st.dictionaries(st.text(min_size=1), st.integers(0, 16)),
)
def test_to_dict_from_dict_round_trip(prompt, answer, difficulty):
    p = Problem(prompt, answer, difficulty, {"x": 1})
    assert Problem.from_dict(p.to_dict()) == p


def test_with_answer_copies_and_keeps_the_original_untouched():
    p = Problem("q", "1", meta={"a": 1})
    q = p.with_answer("2", original_answer="1")
    assert (p.answer, p.meta) == ("1", {"a": 1})
    assert (q.answer, q.meta) == ("2", {"a": 1, "original_answer": "1"})
