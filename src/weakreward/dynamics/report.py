"""``weakreward report RUN_DIR``: the saturation table and plot of a finished (or running) training run.

Reads ``RUN_DIR/metrics.jsonl`` as the trainer writes it: one JSON object per line with ``step``,
``reward/mean`` and, on evaluation steps, ``eval/...`` metrics (``null`` where a value was NaN).

- Lines that are not JSON objects (a torn last line after a crash) are skipped and counted in the notes.
- Several lines with the same step (an evaluation written on its own line, or a step re-logged after a
  resume) are merged; a later line's value wins.
- Step 0 holds the evaluation before training; it never counts as a training step.
- Steps missing from the log are NaN steps (see `weakreward.dynamics.saturation`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weakreward._numbers import real_or_none
from weakreward.dynamics.saturation import Interpolation, SaturationReport, saturation_report
from weakreward.dynamics.tracker import default_heldout_key
from weakreward.grpo.metrics import read_metric_lines

__all__ = ["add_report_arguments", "load_run_curves", "main", "report_run", "run_report_command"]


def _number(value: Any) -> float:
    number = real_or_none(value)
    return math.nan if number is None else number


def load_run_curves(
    metrics_path: str | os.PathLike[str], *, metric: str | None = None, reward_key: str = "reward/mean"
) -> tuple[np.ndarray, dict[int, float], str | None, list[str]]:
    """The training-reward curve and the held-out measurements from a ``metrics.jsonl``.

    Args:
        metrics_path: The file.
        metric: Held-out metric key; None picks one with `default_heldout_key` over all keys in the file.
        reward_key: The training-reward key.

    Returns:
        ``(rewards, heldout, metric, notes)``: ``rewards`` ``[T]`` (``rewards[0]`` is step 1, NaN where a
        step has no finite reward), ``heldout`` ``{step: value}``, the metric key used (or None), and
        notes on anything skipped.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> _ = p.write_text('{"step": 0, "eval/avg@4": 0.2}\\n{"step": 1, "reward/mean": 0.5}\\n'
        ...                  '{"step": 2, "reward/mean": null, "eval/avg@4": 0.3}\\n{"ste')
        >>> rewards, heldout, metric, notes = load_run_curves(p)
        >>> rewards.tolist(), heldout, metric, len(notes)
        ([0.5, nan], {0: 0.2, 2: 0.3}, 'eval/avg@4', 1)
    """
    path = Path(metrics_path)
    notes: list[str] = []
    rows: dict[int, dict[str, Any]] = {}
    keys: dict[str, None] = {}
    lines, bad = read_metric_lines(path)
    for row in lines:
        rows.setdefault(int(row["step"]), {}).update(row)
        keys.update(dict.fromkeys(row))
    if bad:
        notes.append(f"{bad} line(s) of {path.name} were not a JSON object with a step number and were skipped")
    if metric is None:
        metric = default_heldout_key(keys)
    elif metric not in keys:
        notes.append(f"the held-out metric {metric!r} never appears in {path.name}")

    train_steps = [s for s, row in rows.items() if s >= 1 and reward_key in row]
    if rows and not train_steps:
        notes.append(f"no line of {path.name} has the training reward {reward_key!r}")
    num_steps = max(train_steps, default=0)
    rewards = np.full(num_steps, np.nan)
    for s in train_steps:
        rewards[s - 1] = _number(rows[s][reward_key])
    heldout: dict[int, float] = {}
    if metric is not None:
        for s, row in rows.items():
            value = _number(row.get(metric))
            if math.isfinite(value):
                heldout[s] = value
    return rewards, dict(sorted(heldout.items())), metric, notes


def report_run(
    run_dir: str | os.PathLike[str],
    *,
    metric: str | None = None,
    reward_key: str = "reward/mean",
    eps: float = 0.99,
    tail: int = 50,
    rapid_before: int = 100,
    smooth: int = 1,
    interpolation: Interpolation = "linear",
    plot: str | os.PathLike[str] | bool = True,
) -> tuple[SaturationReport, Path | None]:
    """Analyse ``run_dir/metrics.jsonl`` and (by default) write ``run_dir/saturation.png``.

    Args:
        run_dir: The trainer's run folder (or the ``metrics.jsonl`` file itself).
        metric: Held-out metric key (default: `default_heldout_key`).
        reward_key: Training-reward key.
        eps: ``ε`` (see `saturation_report`).
        tail: Steps excluded at the end.
        rapid_before: Rapid-saturation cut-off.
        smooth: Moving-average width for the rewards (1 = the paper's definition).
        interpolation: ``"linear"`` or ``"nearest"`` reading of the held-out metric.
        plot: True writes ``saturation.png`` next to the metrics, a path writes there, False skips it.

    Returns:
        ``(report, plot_path)``; ``plot_path`` is None when no plot was written.

    Raises:
        FileNotFoundError: No ``metrics.jsonl`` in ``run_dir``.
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir if run_dir.is_file() else run_dir / "metrics.jsonl"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} does not exist: is {run_dir} a weakreward run folder?")
    rewards, heldout, metric, notes = load_run_curves(metrics_path, metric=metric, reward_key=reward_key)
    report = saturation_report(
        rewards,
        heldout,
        eps=eps,
        tail=tail,
        rapid_before=rapid_before,
        smooth=smooth,
        interpolation=interpolation,
        metric=metric,
    )
    report.notes[:0] = notes
    plot_path: Path | None = None
    if plot:
        from weakreward.dynamics.plot import plot_saturation

        target = metrics_path.parent / "saturation.png" if plot is True else Path(plot)
        plot_path = plot_saturation(report, target)
    return report, plot_path


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` options to ``parser`` (shared by ``weakreward report`` and `main`)."""
    parser.add_argument("run_dir", help="run folder holding metrics.jsonl (or the metrics.jsonl file)")
    parser.add_argument("--metric", default=None, help="held-out metric key (default: the first eval/ accuracy key)")
    parser.add_argument("--reward-key", default="reward/mean", help="training reward key (default: reward/mean)")
    parser.add_argument("--eps", type=float, default=0.99, help="saturation fraction of r_max (default: 0.99)")
    parser.add_argument("--tail", type=int, default=50, help="last steps that cannot be t_sat (default: 50)")
    parser.add_argument(
        "--rapid-before", type=int, default=100, help="rapid saturation when t_sat < this (default: 100)"
    )
    parser.add_argument(
        "--smooth", type=int, default=1, help="moving-average width for noisy rewards (default: 1 = none)"
    )
    parser.add_argument(
        "--interpolation",
        choices=("linear", "nearest"),
        default="linear",
        help="how the held-out metric is read between evaluations (default: linear)",
    )
    parser.add_argument("--plot", default=None, help="PNG path (default: RUN_DIR/saturation.png)")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    return parser


def run_report_command(args: argparse.Namespace) -> int:
    """Run ``weakreward report`` from parsed arguments; returns the exit code (2 on a missing run)."""
    try:
        report, plot_path = report_run(
            args.run_dir,
            metric=args.metric,
            reward_key=args.reward_key,
            eps=args.eps,
            tail=args.tail,
            rapid_before=args.rapid_before,
            smooth=args.smooth,
            interpolation=args.interpolation,
            plot=False if args.no_plot else (args.plot or True),
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"weakreward report: {err}", file=sys.stderr)
        return 2
    if args.json:
        out = report.to_dict()
        out["plot"] = str(plot_path) if plot_path else None
        print(json.dumps(out, indent=2))
    else:
        print(report.table())
        if plot_path is not None:
            print(f"plot: {plot_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m weakreward.dynamics.report RUN_DIR [options]``."""
    parser = add_report_arguments(
        argparse.ArgumentParser(prog="weakreward report", description="Training-reward saturation of a run.")
    )
    return run_report_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
