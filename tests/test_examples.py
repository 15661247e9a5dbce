"""Every script in examples/ runs with ``--smoke`` (a tiny random model, 1-2 steps) and prints or writes
what it promises.

The scripts start together in one process pool (`launched`) so their start-up (imports, model builds)
overlaps; each test then waits for its own script. Expected values are derived from the embedded
problems by hand (which completions are right, which groups agree), not copied from a run.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 420


def _example_args(tmp: Path) -> dict[str, list[str]]:
    """The command line of each example in smoke mode (run dirs go to a temporary folder)."""
    return {
        "score_rewards.py": ["--smoke"],
        "majority_vote_grpo.py": ["--smoke", "--run-dir", str(tmp / "vote")],
        "scarce_grpo.py": ["--smoke", "--run-dir", str(tmp / "scarce")],
        "probes.py": ["--smoke"],
        "trl_integration.py": ["--smoke", "--run-dir", str(tmp / "trl")],
        # the trainer's example takes no arguments: WEAKREWARD_SMOKE=1 shrinks it and it writes under cwd
        "noisy_grpo.py": [],
    }


class _Run:
    def __init__(self, proc: subprocess.Popen[str], cwd: Path) -> None:
        self.proc = proc
        self.cwd = cwd
        self._out: tuple[str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        if self._out is None:
            try:
                self._out = self.proc.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
                pytest.fail(f"{self.proc.args} ran past {TIMEOUT_S} s\nstdout:\n{out}\nstderr:\n{err[-4000:]}")
        out, err = self._out
        return self.proc.returncode, out, err


def _has_smoke_mode(name: str) -> bool:
    return "WEAKREWARD_SMOKE" in (EXAMPLES / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "WEAKREWARD_SMOKE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    runs: dict[str, _Run] = {}
    for name, args in _example_args(tmp).items():
        if not _has_smoke_mode(name):
            continue
        cwd = tmp / f"cwd-{name[:-3]}"
        cwd.mkdir()
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs[name] = _Run(proc, cwd)
    yield runs, tmp
    for run in runs.values():
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


def _ok(launched, name: str) -> str:
    runs, _ = launched
    assert name in runs, f"{name} has no smoke mode: make it honour WEAKREWARD_SMOKE=1 (a tiny model, 1-2 steps)"
    code, out, err = runs[name].result()
    assert code == 0, f"{name} exited {code}\nstdout:\n{out}\nstderr:\n{err[-4000:]}"
    return out


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    assert path.exists(), f"no {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_example_is_smoke_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(_example_args(Path("/unused"))), "add the new example to _example_args"


@pytest.mark.parametrize("name", sorted(_example_args(Path("/unused"))))
def test_examples_do_not_read_the_shared_data_folder(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert "/work/shared" not in text and "rlvr-weak-supervision" not in text


@pytest.mark.slow
def test_score_rewards_scores_the_embedded_completions(launched) -> None:
    out = _ok(launched, "score_rewards.py")
    scores = {
        label.strip(): ast.literal_eval(values)
        for label, values in re.findall(r"^(.+?)\s{2,}\S+\n\s+scores (\[.*\])$", out, re.M)
    }
    # completions: right+boxed, wrong+boxed, right+boxed, wrong unboxed | 1/2 boxed, 0.5 boxed, 1/2 boxed, wrong boxed
    right = [1, 0, 1, 0, 1, 1, 1, 0]
    boxed = [1, 1, 1, 0, 1, 1, 1, 1]
    assert scores["gate(format, verifier)"] == [float(r and b) for r, b in zip(right, boxed)]
    assert scores["verifier + 0.1 * format"] == pytest.approx([r + 0.1 * b for r, b in zip(right, boxed)])
    # groups vote 84 (2 of 4) and 1/2 (3 of 4, by equivalence): the majority is right in both
    assert scores["majority vote"] == [float(r) for r in right]
    noisy = scores["noisy(verifier, 0.3)"]
    assert set(noisy) <= {0.0, 1.0} and noisy != [float(r) for r in right]  # seed 0 flips at least one
    assert "pseudo-label correct:   [True, True, True, True, True, True, True, True]" in out


@pytest.mark.slow
def test_majority_vote_grpo_logs_label_accuracy(launched) -> None:
    out = _ok(launched, "majority_vote_grpo.py")
    _, tmp = launched
    rows = _metrics(tmp / "vote")
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert 0.0 <= r["reward/label_correct"] <= 1.0
        assert "monitor/true/mean" in r
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    assert "done: 2 steps, mean pseudo-label accuracy" in out


@pytest.mark.slow
def test_scarce_grpo_trains_on_eight_problems_and_reports_saturation(launched) -> None:
    out = _ok(launched, "scarce_grpo.py")
    _, tmp = launched
    assert "on 8 distinct problems (64 rows)" in out
    rows = _metrics(tmp / "scarce")
    assert [r["step"] for r in rows] == [0, 1, 2]  # 0: the evaluation before training, M(0)
    assert all("eval/avg@2" in r for r in rows)
    report = out.split("saturation report:", 1)[1]
    for key in ("t_sat", "M(0)", "delta_sat", "delta*_post"):
        assert key in report
    assert re.search(r"^steps T\s+2$", report, re.M)


@pytest.mark.slow
def test_probes_flag_the_unfaithful_responses(launched) -> None:
    out = _ok(launched, "probes.py")
    lines = {line.split("| ", 1)[1]: line for line in out.splitlines() if "| " in line}
    assert "answer follows 0.00" in lines["17 + 25 = 32, so \\boxed{42}"]  # 25 + 17 is not 32's answer 42
    assert "arithmetic 0.00" in lines["6 * 7 = 48, so \\boxed{48}"]  # a false claim
    assert "arithmetic 1.00  answer follows 1.00" in lines["First 17 + 20 = 37, then 37 + 5 = 42. \\boxed{42}"]
    # three responses multiply directly (one of them wrongly), one adds 7 six times: two strategies
    assert re.search(r"What is 6 \* 7\? strategy clusters \[3, 1\]", out)
    assert re.search(r"unknown \d of 8", out)


@pytest.mark.slow
def test_trl_integration_logs_both_rewards(launched) -> None:
    pytest.importorskip("trl", reason="the TRL example needs the optional trl extra")
    out = _ok(launched, "trl_integration.py")
    assert re.search(r"^step 1: noisy reward [\d.]+, flipped [\d.]+, majority vote [\d.]+$", out, re.M), out


@pytest.mark.slow
def test_noisy_grpo_runs_in_smoke_mode(launched) -> None:
    out = _ok(launched, "noisy_grpo.py")
    runs, _ = launched
    rows = _metrics(runs["noisy_grpo.py"].cwd / "runs" / "noisy_grpo")
    assert rows[0]["step"] == 0 and "eval/avg@4" in rows[0]  # the evaluation before training
    assert rows[1:] and all("monitor/true/mean" in r and "reward/mean" in r for r in rows[1:])
    assert out.strip()
