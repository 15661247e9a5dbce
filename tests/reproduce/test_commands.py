"""``weakreward reproduce {scarce,noise,proxy} --smoke`` end to end on a tiny random model: the runs, the
metrics, the reports and figures they write, skipping finished runs, and resuming after a SIGKILL."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from weakreward.cli import main
from weakreward.reproduce.command import reproduce
from weakreward.reproduce.noise import GAMMAS
from weakreward.reproduce.proxy import REWARDS
from weakreward.reproduce.report import VERDICTS, combined_report, read_rows
from weakreward.reproduce.runner import SMOKE
from weakreward.reproduce.scarce import SEEDS, SMOKE_NS

# Ten tiny training runs in all: about two minutes on two idle cores, far longer on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RUNS = {
    "scarce": [f"n{n}-seed{s}" for s in SEEDS for n in SMOKE_NS],
    "noise": [f"gamma{g:.1f}" for g in GAMMAS],
    "proxy": list(REWARDS),
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    """All three findings, in smoke mode, each into ``root/<finding>`` (in-process: imports are shared)."""
    root = tmp_path_factory.mktemp("reproduce")
    logs = {}
    for finding in RUNS:
        stream = io.StringIO()
        reproduce(finding, root / finding, smoke=True, stream=stream)
        logs[finding] = stream.getvalue()
    return root, logs


@pytest.mark.parametrize("finding", list(RUNS))
def test_every_run_trains_all_steps_evaluating_from_step_zero(smoke_root, finding):
    root, _ = smoke_root
    for name in RUNS[finding]:
        rows = read_rows(root / finding / name)
        assert list(rows) == list(range(SMOKE.steps + 1)), name
        evals = [s for s, r in rows.items() if f"eval/avg@{SMOKE.eval_samples}" in r]
        assert evals == list(range(0, SMOKE.steps + 1, SMOKE.eval_every)), name
        result = json.loads((root / finding / name / "result.json").read_text())
        assert result["saturation"]["num_steps"] == SMOKE.steps
        assert {"accuracy", "pass@1", "pass@2", "answer_entropy", "distinct_2", "early_answering"} <= set(
            result["probes"]
        )


@pytest.mark.parametrize("finding", list(RUNS))
def test_the_report_has_a_verdict_one_row_per_run_and_its_figures(smoke_root, finding):
    root, logs = smoke_root
    folder = root / finding
    report = (folder / "report.md").read_text()
    (verdict,) = re.findall(r"\*\*Verdict: (.+?)\.\*\*", report)
    assert verdict in VERDICTS
    assert f"verdict: {verdict}" in logs[finding]
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert figures
    for name in figures:
        assert (folder / name).read_bytes()[:8] == PNG
    probe_table = report.split("### Probes")[1].split("\n\n")[1]
    assert len(probe_table.splitlines()) == 2 + 1 + len(RUNS[finding])  # header, rule, starting model, runs
    assert "## What a run this small cannot show" in report
    assert (folder / "base_probes.json").exists()


def test_scarce_reports_saturation_per_n_and_seed(smoke_root):
    root, _ = smoke_root
    report = (root / "scarce" / "report.md").read_text()
    rows = [line for line in report.split("### Saturation per run")[1].split("\n\n")[1].splitlines()[2:]]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [(int(c[0]), int(c[1])) for c in cells] == [(n, s) for s in SEEDS for n in SMOKE_NS]
    t_sat = {(int(c[0]), int(c[1])): c[2] for c in cells}
    for c in cells:
        # No gap for the largest N against itself, nor where either run never saturated (no Δ_sat).
        n, seed = int(c[0]), int(c[1])
        unsaturated = "not reached" in (c[2], t_sat[(max(SMOKE_NS), seed)])
        assert (c[6] == "n/a") == (n == max(SMOKE_NS) or unsaturated), c
        if c[6] != "n/a":
            assert math.isfinite(float(c[6]))


def test_noise_corrupts_nested_label_sets_of_the_requested_size(smoke_root):
    root, _ = smoke_root
    corrupted = {}
    for gamma, name in zip(GAMMAS, RUNS["noise"]):
        train = json.loads((root / "noise" / name / "train.json").read_text())
        wrong = {row["question"] for row in train if row["answer"] != row["original_answer"]}
        assert {row["question"] for row in train if row["corrupted"]} == wrong
        assert len(wrong) == math.floor(gamma * len(train) + 0.5)  # round half up, as corrupt_labels documents
        spec = json.loads((root / "noise" / name / "spec.json").read_text())
        assert spec["realised"] == len(wrong) / len(train)
        corrupted[gamma] = wrong
    for low, high in zip(GAMMAS, GAMMAS[1:]):
        assert corrupted[low] <= corrupted[high]  # one seeded order: the noisy sets are nested
    assert json.loads((root / "noise" / "wrong_answers.json").read_text())["samples"] == SMOKE.mining_samples


def test_the_clean_baseline_is_trained_once_and_copied_into_the_other_findings(smoke_root):
    root, logs = smoke_root
    source = root / "scarce" / f"n{max(SMOKE_NS)}-seed0"  # the same 4 problems, seed 0, true verifier
    for finding, name in (("noise", "gamma0.0"), ("proxy", "true")):
        result = json.loads((root / finding / name / "result.json").read_text())
        assert result["copied_from"] == str(source) and result["wall_s"] == 0.0
        assert (root / finding / name / "metrics.jsonl").read_bytes() == (source / "metrics.jsonl").read_bytes()
        assert f"{name}: identical to {source}, copied" in logs[finding]
    assert "copied" not in logs["scarce"]


def test_proxy_runs_log_the_true_and_majority_monitors(smoke_root):
    root, _ = smoke_root
    for name in RUNS["proxy"]:
        row = read_rows(root / "proxy" / name)[1]
        assert {"monitor/true/mean", "monitor/majority/label_correct", "entropy", "completion_len/mean"} <= set(row)


def test_a_rerun_skips_finished_runs_and_rewrites_the_report(smoke_root):
    root, _ = smoke_root
    folder = root / "proxy"
    before = {name: (folder / name / "metrics.jsonl").read_bytes() for name in RUNS["proxy"]}
    stream = io.StringIO()
    section = reproduce("proxy", folder, smoke=True, stream=stream)
    log = stream.getvalue()
    assert log.count("finished earlier, skipped") == len(RUNS["proxy"])
    assert f"({len(RUNS['proxy']) * SMOKE.steps}/{len(RUNS['proxy']) * SMOKE.steps} steps already done)" in log
    assert {name: (folder / name / "metrics.jsonl").read_bytes() for name in RUNS["proxy"]} == before
    assert section.verdict in VERDICTS


def test_the_combined_report_stitches_the_three_findings(smoke_root, tmp_path):
    root, _ = smoke_root
    out = combined_report(root, tmp_path / "docs" / "reproduction.md")
    text = out.read_text()
    for finding in RUNS:
        assert f"`weakreward reproduce {finding}`" in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out.parent / link).read_bytes()[:8] == PNG


def test_a_folder_made_with_other_settings_is_refused_by_name(smoke_root, capsys):
    root, _ = smoke_root
    spec = root / "scarce" / RUNS["scarce"][0] / "spec.json"
    saved = spec.read_text()
    spec.write_text(json.dumps({**json.loads(saved), "fingerprint": "0" * 16}))
    try:
        assert main(["reproduce", "scarce", "--smoke", "--run-dir", str(root / "scarce")]) == 2
    finally:
        spec.write_text(saved)
    assert "other settings" in capsys.readouterr().err


def test_the_report_subcommand_names_a_missing_root(tmp_path, capsys):
    assert main(["reproduce", "report", "--root", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 2
    assert "no finished finding" in capsys.readouterr().err


def test_killed_mid_run_then_rerun_resumes_from_the_checkpoint(tmp_path):
    run_dir = tmp_path / "scarce"
    cmd = [sys.executable, "-m", "weakreward.cli", "reproduce", "scarce", "--smoke", "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first, second = RUNS["scarce"][:2]
    checkpoint = run_dir / second / "checkpoints" / f"step-{SMOKE.eval_every:06d}"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None and not checkpoint.exists():
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert (run_dir / first / "result.json").exists() and not (run_dir / second / "result.json").exists()
    finished = (run_dir / first / "result.json").stat().st_mtime_ns
    # Lines up to the checkpoint carry this invocation's timings: a resumed run keeps them, a fresh one would not.
    kept = (run_dir / second / "metrics.jsonl").read_text().splitlines()[: SMOKE.eval_every + 1]

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{first}: finished earlier, skipped" in done.stderr
    resumed = re.search(r"\((\d+)/(\d+) steps already done\)", done.stderr)
    assert resumed and int(resumed.group(1)) >= SMOKE.steps + SMOKE.eval_every
    assert (run_dir / first / "result.json").stat().st_mtime_ns == finished
    assert (run_dir / second / "metrics.jsonl").read_text().splitlines()[: SMOKE.eval_every + 1] == kept
    for name in RUNS["scarce"]:
        lines = (run_dir / name / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(line)["step"] for line in lines]
        assert steps == list(range(SMOKE.steps + 1)), name  # no duplicate, no gap
    assert (run_dir / "report.md").exists()
