"""Checkpoint folders and metrics.jsonl survive a crash at any point."""

from __future__ import annotations

import json

import torch

from weakreward.grpo.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from weakreward.grpo.metrics import MetricsWriter, read_metrics


def test_incomplete_and_temporary_folders_are_never_resumed(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(2)}, {"x": 1})
    (tmp_path / ".tmp-step-000002-99").mkdir()  # a crash during the write of step 2
    (tmp_path / "step-000003").mkdir()  # not written by save_checkpoint: no state.pt
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    weights, state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state == {"step": 1, "x": 1} and torch.equal(weights["w"], torch.ones(2))
    prune_checkpoints(tmp_path, keep=1)
    assert not (tmp_path / ".tmp-step-000002-99").exists()


def test_prune_keeps_the_newest_and_resave_replaces(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"w": torch.full((1,), float(step))}, {})
    save_checkpoint(tmp_path, 3, {"w": torch.full((1,), 30.0)}, {})
    prune_checkpoints(tmp_path, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    assert load_checkpoint(latest_checkpoint(tmp_path))[0]["w"].item() == 30.0


def test_resume_drops_later_and_torn_metric_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    for step in (1, 2, 3):
        writer.write({"step": step, "loss": float(step)})
    with open(path, "a") as f:
        f.write('{"step": 4, "lo')  # killed mid-line
    MetricsWriter(path, resume_step=2).write({"step": 3, "loss": 9.0})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert read_metrics(path)[-1]["loss"] == 9.0
