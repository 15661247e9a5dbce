"""load_verl_parquet on small slices of every kind of the paper's files (tests/fixtures/verl/)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward.data import Problem, load_verl_parquet
from weakreward.data.parquet import as_mapping, decode_ground_truth, row_to_problem, verl_row, write_verl_parquet

FIXTURES = Path(__file__).parent.parent / "fixtures" / "verl"
ALL = sorted(p.name for p in FIXTURES.glob("*.parquet"))


def test_the_fixtures_cover_every_kind_of_file():
    assert ALL == sorted(
        [
            "eval_gpqa.parquet",
            "eval_math500.parquet",
            "eval_quantum_lock.parquet",
            "graph_noisy.parquet",
            "graph_train.parquet",
            "math_noisy.parquet",
            "math_train.parquet",
            "science_map.parquet",
            "science_struct.parquet",
        ]
    )


@pytest.mark.parametrize("name", ALL)
def test_every_fixture_loads_into_problems(name):
    path = FIXTURES / name
    problems = load_verl_parquet(path)
    raw = load_verl_parquet(path, raw=True)
    assert len(problems) == len(raw) == pq.read_metadata(path).num_rows > 0
    for i, (p, row) in enumerate(zip(problems, raw)):
        assert isinstance(p, Problem)
        assert isinstance(p.prompt, list) and p.prompt[-1]["role"] == "user"
        assert p.prompt[-1]["content"] == row["prompt"][-1]["content"]
        assert isinstance(p.answer, str) and p.answer
        assert p.meta["source"] == (str(path), i)
        assert p.meta["data_source"] == row["data_source"]
        assert isinstance(p.meta["extra_info"], dict)
        assert all(isinstance(v, int) and 0 <= v <= 16 for v in p.difficulty.values())


def test_math_rows_decode_the_json_list_label_and_merge_both_difficulties():
    p = load_verl_parquet(FIXTURES / "math_train.parquet")[0]
    raw = load_verl_parquet(FIXTURES / "math_train.parquet", raw=True)[0]
    assert raw["reward_model"]["ground_truth"] == '["18"]'
    assert p.answer == "18" and p.meta["original_answer"] == "18"
    assert p.meta["index"] == raw["extra_info"]["index"] == 8241
    # the difficulty column (int and float counts) merged over extra_info.model_difficulty
    assert p.difficulty["Qwen2.5-Math-1.5B"] == 1 and p.difficulty["Llama-3.1-8B-Instruct"] == 13
    assert p.difficulty["DeepSeek-R1-Distill-Qwen-7B"] == 5
    assert p.meta["reward_style"] == "rule" and p.meta["ability"] == "math"


def test_noisy_math_rows_keep_the_true_label_in_meta():
    problems = load_verl_parquet(FIXTURES / "math_noisy.parquet")
    raw = load_verl_parquet(FIXTURES / "math_noisy.parquet", raw=True)
    changed = [p for p in problems if p.answer != p.meta["original_answer"]]
    assert len(changed) == 2  # the fixture holds two clean and two corrupted rows
    for p, row in zip(problems, raw):
        assert json.loads(row["extra_info"]["original_ground_truth"]) == [p.meta["original_answer"]]
        assert json.loads(row["reward_model"]["ground_truth"]) == [p.answer]
    # noisy files have a null difficulty column; the DeepSeek counts from extra_info remain
    assert all(set(p.difficulty) == {f"DeepSeek-R1-Distill-Qwen-{s}" for s in ("1.5B", "7B", "32B")} for p in problems)


def test_graph_rows_decode_the_json_string_extra_info():
    problems = load_verl_parquet(FIXTURES / "graph_train.parquet")
    raw = load_verl_parquet(FIXTURES / "graph_train.parquet", raw=True)
    assert isinstance(raw[0]["extra_info"], str)
    assert problems[0].meta["extra_info"] == json.loads(raw[0]["extra_info"])
    assert problems[0].meta["index"] == problems[0].meta["extra_info"]["source_index"]
    assert {p.meta["extra_info"]["source_dataset"] for p in problems} == {"largest_island", "quantum_lock"}
    assert problems[0].meta["__index_level_0__"] == raw[0]["__index_level_0__"]


def test_noisy_graph_rows_decode_the_json_list_wrong_labels():
    problems = load_verl_parquet(FIXTURES / "graph_noisy.parquet")
    raw = load_verl_parquet(FIXTURES / "graph_noisy.parquet", raw=True)
    listed = [(p, r) for p, r in zip(problems, raw) if r["reward_model"]["ground_truth"].startswith("[")]
    assert len(listed) == 2
    for p, r in listed:
        assert json.loads(r["reward_model"]["ground_truth"]) == [p.answer]
    assert all(p.difficulty == {} for p in problems)


def test_science_map_and_struct_columns_load_alike():
    struct = load_verl_parquet(FIXTURES / "science_struct.parquet")
    mapped = load_verl_parquet(FIXTURES / "science_map.parquet")
    raw = load_verl_parquet(FIXTURES / "science_map.parquet", raw=True)
    assert isinstance(raw[0]["extra_info"], list)  # an Arrow map: key/value pairs
    for a, b in zip(struct, mapped):
        assert a.prompt == b.prompt and a.answer == b.answer == b.meta["extra_info"]["answer"]
        assert a.difficulty == b.difficulty and a.difficulty["Qwen2.5-Math-1.5B"] == 1
        assert a.meta["domain"] == b.meta["domain"]


def test_eval_rows():
    math500 = load_verl_parquet(FIXTURES / "eval_math500.parquet")
    assert math500[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and math500[0].difficulty == {}
    assert math500[0].meta["data_source"] == "HuggingFaceH4/MATH-500"
    gpqa = load_verl_parquet(FIXTURES / "eval_gpqa.parquet")
    assert [p.answer for p in gpqa] == ["C", "A"]
    lock = load_verl_parquet(FIXTURES / "eval_quantum_lock.parquet")[0]
    assert lock.answer == "C → B → C → B → C → B → A"
    assert "Llama-3.2-3B-Instruct" not in lock.difficulty  # null count dropped
    assert lock.meta["extra_info"]["solution_path"] == ["C", "B", "C", "B", "C", "B", "A"]


@pytest.mark.parametrize(
    ("ground_truth", "expected"),
    [
        ('["18"]', ("18", ["18"])),
        ('["a", "b"]', ("a", ["a", "b"])),
        ("[A, L^2] = 0", ("[A, L^2] = 0", None)),
        ("[1, 2]", ("[1, 2]", None)),
        ("[0, 1)", ("[0, 1)", None)),
        ("[]", ("[]", None)),
        ("7", ("7", None)),
        (None, (None, None)),
        (3, ("3", None)),
    ],
)
def test_decode_ground_truth(ground_truth, expected):
    assert decode_ground_truth(ground_truth) == expected


def test_several_answers_are_kept_in_meta(tmp_path):
    path = tmp_path / "two.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [{"prompt": [{"role": "user", "content": "q"}], "reward_model": {"ground_truth": '["1", "2"]'}}]
        ),
        path,
    )
    p = load_verl_parquet(path)[0]
    assert p.answer == "1" and p.meta["answers"] == ["1", "2"]


def _write(tmp_path, rows):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


GOOD = {"prompt": [{"role": "user", "content": "q"}], "reward_model": {"ground_truth": "1"}, "extra_info": "{}"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "extra_info": "{not json"}, "extra_info is a string but not valid JSON"),
        ({**GOOD, "extra_info": "[1, 2]"}, "extra_info is JSON but not an object"),
        ({**GOOD, "prompt": None}, "no 'prompt'"),
        ({**GOOD, "prompt": [{"role": "user"}]}, "null 'role' or 'content'"),
        ({**GOOD, "prompt": []}, "empty"),
    ],
)
def test_a_bad_row_raises_naming_the_file_and_row(tmp_path, bad, message):
    path = tmp_path / "bad.parquet"
    for i, row in enumerate([GOOD, GOOD, bad]):  # one file per row: the rows' schemas differ
        pq.write_table(pa.Table.from_pylist([row]), tmp_path / f"part{i}.parquet")
    table = pa.concat_tables(
        [pq.read_table(tmp_path / f"part{i}.parquet") for i in range(3)], promote_options="permissive"
    )
    pq.write_table(table, path)
    with pytest.raises(ValueError, match=rf"bad\.parquet: row 2: .*{message}"):
        load_verl_parquet(path)


def test_row_to_problem_rejects_a_non_dict_reward_model():
    with pytest.raises(ValueError, match="reward_model must be a dict"):
        row_to_problem({**GOOD, "reward_model": "1"})


def test_bad_difficulty_value_names_the_row(tmp_path):
    path = _write(tmp_path, [{**GOOD, "difficulty": {"m": 2.5}}])
    with pytest.raises(ValueError, match=r"row 0: .*difficulty\['m'\]"):
        load_verl_parquet(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_verl_parquet(tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="junk.parquet"):
        load_verl_parquet(junk)


# -- one decoder of metadata cells, and the files rewritten for verl -------------------------------------


_cells = st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=4)


@given(_cells)
def test_every_stored_form_of_a_mapping_decodes_to_the_same_dict(cell: dict) -> None:
    import numpy as np

    pairs = list(cell.items())
    arrow_map = np.empty(len(pairs), dtype=object)
    arrow_map[:] = pairs
    forms = [cell, json.dumps(cell), repr(cell), pairs, arrow_map]
    assert all(as_mapping(form) == cell for form in forms)


@pytest.mark.parametrize("cell", ["[1, 2]", "not json", 7, [("a", 1, 2)]])
def test_a_cell_that_is_not_a_mapping_raises_naming_the_column(cell) -> None:
    with pytest.raises(ValueError, match="extra_info"):
        as_mapping(cell, "extra_info")


def test_verl_row_decodes_labels_and_flattens_nested_metadata() -> None:
    row = {
        "prompt": [{"role": "user", "content": "q"}],
        "reward_model": {"ground_truth": '["18", "eighteen"]', "style": "rule"},
        "extra_info": '{"source_index": 3, "grid": [[0, 1], [1, 0]], "original_ground_truth": "[\\"17\\"]"}',
        "difficulty": [("model-a", 4)],
    }
    out = verl_row(row, 9)
    assert out["reward_model"] == {"ground_truth": "18", "style": "rule"}
    assert out["extra_info"]["index"] == 3 and json.loads(out["extra_info"]["grid"]) == [[0, 1], [1, 0]]
    assert out["extra_info"]["original_ground_truth"] == "17"
    assert json.loads(out["extra_info"]["answers"]) == ["18", "eighteen"]
    assert out["difficulty"] == {"model-a": 4}
    assert verl_row({**row, "extra_info": None}, 9)["extra_info"]["index"] == 9  # no index: the row's position


@pytest.mark.parametrize("name", ALL)
def test_write_verl_parquet_keeps_every_row_with_a_struct_extra_info(name: str, tmp_path: Path) -> None:
    target = tmp_path / name
    originals = load_verl_parquet(FIXTURES / name, raw=True)
    assert write_verl_parquet(FIXTURES / name, target) == len(originals)
    assert pa.types.is_struct(pq.read_schema(target).field("extra_info").type)
    rows = load_verl_parquet(target, raw=True)
    expected = [decode_ground_truth(r["reward_model"]["ground_truth"])[0] for r in originals]
    assert [r["reward_model"]["ground_truth"] for r in rows] == expected
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in originals]
