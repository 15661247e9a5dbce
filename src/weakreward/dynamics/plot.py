"""The saturation plot: training reward and the held-out metric against step, ``t_sat`` marked.

Drawn on a bare matplotlib ``Figure`` with the Agg canvas, so it never touches pyplot's global state or
the user's interactive backend, and works on a headless machine.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from weakreward.dynamics.saturation import SaturationReport

__all__ = ["plot_saturation"]


def plot_saturation(
    report: SaturationReport, path: str | os.PathLike[str], *, title: str | None = None, dpi: int = 120
) -> Path:
    """Write a PNG of ``report``'s curves.

    Training reward (left axis, solid) per step; the held-out metric (right axis, markers at the measured
    steps); a dashed vertical line at ``t_sat`` (when reached), a dotted horizontal line at the
    saturation threshold ``ε·r̄_max``, and the grey band of the last ``tail`` steps that cannot start
    a plateau. Missing (NaN) reward steps show as gaps.

    Args:
        report: From `saturation_report` (or `SaturationTracker.report`).
        path: Output PNG path; parent folders are created.
        title: Figure title (default: the t_sat summary).
        dpi: Resolution.

    Returns:
        The written path.

    Examples:
        >>> import tempfile, pathlib
        >>> from weakreward.dynamics import saturation_report
        >>> rep = saturation_report([min(t / 10, 1.0) for t in range(1, 41)], {0: 0.1, 20: 0.3, 40: 0.3}, tail=5)
        >>> out = plot_saturation(rep, pathlib.Path(tempfile.mkdtemp()) / "sat.png")
        >>> out.read_bytes()[:4] == b"\\x89PNG"
        True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = list(range(1, len(report.rewards) + 1))
    label = "training reward" + (f" ({report.smooth}-step mean)" if report.smooth > 1 else "")
    ax.plot(steps, report.rewards, color="tab:blue", lw=1.5, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training reward", color="tab:blue")
    if math.isfinite(report.threshold):
        ax.axhline(report.threshold, color="tab:blue", ls=":", lw=1, label=f"{report.eps:g}·r_max")
    if report.tail and report.num_steps:
        ax.axvspan(
            max(report.t_eff, 0) + 0.5, report.num_steps + 0.5, color="0.9", zorder=0, label=f"last {report.tail} steps"
        )
    if report.t_sat is not None:
        ax.axvline(report.t_sat, color="tab:red", ls="--", lw=1.2, label=f"t_sat = {report.t_sat}")
    handles, labels = ax.get_legend_handles_labels()
    if report.heldout_steps:
        ax2 = ax.twinx()
        ax2.plot(
            report.heldout_steps,
            report.heldout_values,
            color="tab:orange",
            marker="o",
            ms=4,
            lw=1.2,
            label=report.metric or "held-out",
        )
        ax2.set_ylabel(report.metric or "held-out metric", color="tab:orange")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    if title is None:
        if report.t_sat is None:
            title = "training reward never saturated"
        else:
            title = f"t_sat = {report.t_sat}" + (" (rapid)" if report.rapid else "")
            if math.isfinite(report.delta_sat):
                title += f", Δ_sat = {report.delta_sat:+.3f}, Δ*_post = {report.delta_post:+.3f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path
