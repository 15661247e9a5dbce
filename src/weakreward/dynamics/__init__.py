"""Training-reward saturation dynamics (arXiv 2604.18574 §3.1): ``t_sat``, the pre-saturation gain
``Δ_sat``, the post-saturation residual ``Δ*_post``, the large-vs-small gap, a live trainer callback, and
the ``weakreward report`` table and plot."""

from weakreward.dynamics.plot import plot_saturation
from weakreward.dynamics.report import load_run_curves, report_run
from weakreward.dynamics.saturation import (
    SaturationReport,
    held_out_at,
    saturation_gap,
    saturation_report,
    saturation_step,
    saturation_threshold,
)
from weakreward.dynamics.tracker import MemorisationWarning, SaturationTracker, default_heldout_key

__all__ = [
    "MemorisationWarning",
    "SaturationReport",
    "SaturationTracker",
    "default_heldout_key",
    "held_out_at",
    "load_run_curves",
    "plot_saturation",
    "report_run",
    "saturation_gap",
    "saturation_report",
    "saturation_step",
    "saturation_threshold",
]
