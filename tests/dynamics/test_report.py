"""``weakreward report RUN_DIR`` on run folders in the trainer's metrics.jsonl format."""

from __future__ import annotations

import json
import math

import pytest

from weakreward.cli import main as cli_main
from weakreward.dynamics import load_run_curves, report_run


def _row(step: int, reward: float | None, **extra):
    row = {
        "step": step,
        "reward/mean": reward,
        "reward/std": 0.4,
        "reward/nan_frac": 0.0,
        "monitor/true/mean": None if reward is None else reward * 0.8,
        "loss": 0.01,
        "kl": 1e-4,
        "completion_len/mean": 42.0,
        "lr": 1e-6,
    }
    row.update(extra)
    return row


def _write_run(tmp_path, steps=200, eval_every=20, rapid=True, torn=False, evals=True):
    rows = []
    for t in range(1, steps + 1):
        r = min(t / (20 if rapid else 150), 1.0) * 0.9
        row = _row(t, None if t == 7 else r)
        if evals and (t % eval_every == 0 or t == steps):
            acc = 0.25 + (0.05 if rapid else 0.3) * min(t / (20 if rapid else 150), 1.0)
            row.update({"eval/avg@4": acc, "eval/pass@1": acc, "eval/pass@2": acc + 0.1, "eval/pass@4": acc + 0.2})
        rows.append(row)
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    if torn:
        text += '{"step": 201, "reward/me'
    (tmp_path / "metrics.jsonl").write_text(text)
    return tmp_path


def test_report_command_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    run = _write_run(tmp_path, torn=True)
    assert cli_main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    t_sat_line = next(line for line in out.splitlines() if line.startswith("t_sat"))
    assert t_sat_line.split()[-1] == "20"  # 0.9 * min(t/20, 1) first reaches 0.99 * 0.9 at t = 20
    png = run / "saturation.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5_000
    assert "1 line(s)" in out  # the torn line
    assert "eval/avg@4" in out


def test_report_values_on_a_rapid_and_a_slow_run(tmp_path):
    (tmp_path / "a").mkdir()
    rapid, _ = report_run(_write_run(tmp_path / "a"), plot=False)
    # r_t = 0.9 * min(t/20, 1): threshold 0.891 first reached at t = 20 (0.9 * 19.8/20).
    assert rapid.t_sat == 20 and rapid.rapid is True
    assert rapid.metric == "eval/avg@4"
    assert rapid.m0 == pytest.approx(0.30)  # no step-0 eval: the first (step 20) is used
    assert rapid.delta_sat == pytest.approx(0.0) and rapid.delta_post == pytest.approx(0.0)
    (tmp_path / "b").mkdir()
    slow, _ = report_run(_write_run(tmp_path / "b", steps=400, rapid=False), plot=False)
    assert slow.t_sat == 149 and slow.rapid is False
    assert slow.delta_sat > 0.2


def test_json_output_and_no_plot(tmp_path, capsys):
    run = _write_run(tmp_path)
    assert cli_main(["report", str(run), "--json", "--no-plot", "--tail", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["t_sat"] == 20 and data["tail"] == 10 and data["plot"] is None
    assert not (run / "saturation.png").exists()


def test_run_without_evaluations_is_explained(tmp_path, capsys):
    run = _write_run(tmp_path, evals=False)
    assert cli_main(["report", str(run), "--metric", "eval/avg@4"]) == 0
    out = capsys.readouterr().out
    assert "never appears" in out and "no held-out evaluations" in out
    assert (run / "saturation.png").exists()


def test_short_run_is_explained(tmp_path, capsys):
    run = _write_run(tmp_path, steps=5, eval_every=2)
    assert cli_main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "too short" in out and "not reached" in out


def test_missing_run_dir_exits_2(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_duplicate_steps_merge_with_the_later_value_winning(tmp_path):
    lines = [
        {"step": 1, "reward/mean": 0.1},
        {"step": 1, "reward/mean": 0.5},
        {"step": 2, "eval/avg@4": 0.2},
        {"step": 2, "reward/mean": 0.6},
        [1, 2],
        {"step": "x"},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    rewards, heldout, metric, notes = load_run_curves(path)
    assert rewards.tolist() == [0.5, 0.6] and heldout == {2: 0.2} and metric == "eval/avg@4"
    assert "2 line(s)" in notes[0]


def test_tiny_training_run_then_report(tmp_path, capsys):
    from weakreward.dynamics import SaturationTracker
    from weakreward.grpo.config import GRPOConfig
    from weakreward.grpo.trainer import GRPOTrainer
    from weakreward.models import char_tokenizer, tiny_llama
    from weakreward.rewards.format_reward import FormatReward

    tok = char_tokenizer()
    cfg = GRPOConfig(
        steps=3,
        group_size=2,
        prompts_per_step=1,
        max_new_tokens=4,
        lr=1e-3,
        eval_every=2,
        eval_samples=2,
        run_dir=str(tmp_path),
        progress=False,
    )
    tracker = SaturationTracker(tail=1, warn=False)
    problems = [{"prompt": "1+1=", "answer": "2"}]
    trainer = GRPOTrainer(
        tiny_llama(tok),
        FormatReward(r"\d"),
        problems,
        tokenizer=tok,
        config=cfg,
        eval_problems=problems,
        callbacks=[tracker],
    )
    trainer.train()
    assert sorted(tracker.rewards) == [1, 2, 3]
    assert sorted(tracker.heldout) == [0, 2, 3] and tracker.metric.startswith("eval/")
    assert cli_main(["report", str(tmp_path), "--tail", "1"]) == 0
    out = capsys.readouterr().out
    assert "steps T" in out and "3" in out
    assert (tmp_path / "saturation.png").exists()
    report, _ = report_run(tmp_path, tail=1, plot=False)
    assert report.num_steps == 3 and report.heldout_steps == [0, 2, 3]
    assert report.t_sat == tracker.report().t_sat
    assert math.isfinite(report.r_max)
