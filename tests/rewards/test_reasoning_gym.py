"""ReasoningGymVerifier on real graph rows of the paper's eval set (largest_island, quantum_lock)."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym")

from weakreward import ReasoningGymVerifier  # noqa: E402

ROWS = [
    json.loads(line)
    for line in (Path(__file__).resolve().parents[1] / "fixtures" / "reasoning_gym_graph_rows.jsonl")
    .read_text()
    .splitlines()
]
ISLAND = [r for r in ROWS if json.loads(r["extra_info"])["source_dataset"] == "largest_island"]
LOCK = [r for r in ROWS if json.loads(r["extra_info"])["source_dataset"] == "quantum_lock"]


def _score(verifier: ReasoningGymVerifier, rows: list[dict], completions: list[str]):
    return verifier.score(
        completions,
        references=[r["ground_truth"] for r in rows],
        prompts=[r["question"] for r in rows],
        extra_info=[r["extra_info"] for r in rows],
    )


def test_fixture_covers_both_tasks() -> None:
    assert len(ISLAND) == 4 and len(LOCK) == 4


def test_largest_island_scores_the_boxed_area() -> None:
    v = ReasoningGymVerifier("largest_island")
    right = _score(v, ISLAND, [rf"The largest island has area \boxed{{{r['ground_truth']}}}." for r in ISLAND])
    wrong = _score(v, ISLAND, [rf"\boxed{{{int(r['ground_truth']) + 1}}}" for r in ISLAND])
    assert right.scores.tolist() == [1.0] * 4
    assert set(right.details["reason"]) == {"match"}
    assert wrong.scores.tolist() == [0.0] * 4


def test_quantum_lock_uses_the_metadata_to_simulate() -> None:
    v = ReasoningGymVerifier("quantum_lock")
    right = _score(v, LOCK, [rf"\boxed{{{r['ground_truth']}}}" for r in LOCK])
    assert right.scores.tolist() == [1.0] * 4
    wrong = _score(v, LOCK[:1], [r"\boxed{A → A}"])
    assert wrong.scores.tolist() == [0.0]
    assert wrong.details["reason"] == ["mismatch"]


def test_task_read_from_metadata_when_not_given() -> None:
    v = ReasoningGymVerifier(task_name=None)
    rows = ISLAND[:2] + LOCK[:2]
    r = _score(v, rows, [rf"<answer>{row['ground_truth']}</answer>" for row in rows])
    assert r.scores.tolist() == [1.0] * 4


def test_metadata_as_dict_and_reasons() -> None:
    v = ReasoningGymVerifier("largest_island")
    meta = json.loads(ISLAND[0]["extra_info"])
    r = v.score(
        [r"\boxed{8}", "I do not know", r"\boxed{8}", r"\boxed{8}"],
        references=["8", "8", "8", None],
        extra_info=[meta, meta, "{not json", meta],
    )
    assert r.scores[:3].tolist() == [1.0, 0.0, 0.0]
    assert math.isnan(r.scores[3])
    assert r.details["reason"] == ["match", "no answer", "error: metadata did not parse", "no reference"]


def test_missing_metadata_column_is_a_configuration_error() -> None:
    v = ReasoningGymVerifier("largest_island")
    with pytest.raises(ValueError, match="extra_info"):
        v.score([r"\boxed{8}"], references=["8"])
    assert ReasoningGymVerifier("largest_island", metadata_column="meta").needs == {"references", "extras.meta"}


def test_unknown_task_names_the_field() -> None:
    with pytest.raises(ValueError, match="ReasoningGymVerifier.task_name"):
        ReasoningGymVerifier("no_such_task_xyz")
    with pytest.raises(ValueError, match="set task_name"):
        ReasoningGymVerifier(task_name=None, metadata_column=None)


def test_compare_clusters_answers_without_metadata() -> None:
    v = ReasoningGymVerifier("largest_island")
    assert [x.match for x in v.compare(["8", "8", "8"], ["8", " 8 ", "7"])] == [True, True, False]
    lock = ReasoningGymVerifier("quantum_lock")
    assert [x.match for x in lock.compare(["A → B", "A → B"], ["A→B", "B → A"])] == [True, False]


def test_pickle_round_trip() -> None:
    v = ReasoningGymVerifier("largest_island")
    _score(v, ISLAND[:1], [r"\boxed{8}"])
    copy = pickle.loads(pickle.dumps(v))
    assert copy.task_name == "largest_island"
    assert _score(copy, ISLAND, [rf"\boxed{{{r['ground_truth']}}}" for r in ISLAND]).scores.tolist() == [1.0] * 4


def test_scorers_run_in_the_timeout_pool_and_a_hung_scorer_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    engine = tmp_path / "hang.py"
    engine.write_text(
        "import time\nclass Engine:\n    def run(self, task, payload, options):\n        time.sleep(60)\n"
    )
    monkeypatch.setattr(ReasoningGymVerifier, "engine_file", str(engine))
    with ReasoningGymVerifier("largest_island", timeout=1.0) as v:
        result = _score(v, ISLAND[:1], [r"\boxed{3}"])
        assert result.details["reason"] == ["timeout"]
        assert result.scores.tolist() == [0.0]
