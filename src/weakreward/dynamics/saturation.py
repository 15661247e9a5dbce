"""Training-reward saturation, exactly as arXiv 2604.18574 (§3.1) defines it.

Steps are numbered from 1. With ``r̄_t`` the mean training reward at step ``t`` of a run of ``T`` steps:

- ``r̄_max = max_t r̄_t`` (over the whole run);
- the saturation step ``t_sat = min{t ∈ 1..T_eff : r̄_t ≥ ε·r̄_max}``, ``ε = 0.99``, ``T_eff = T − 50``
  (the last 50 steps may not *start* a plateau: a curve still rising at the end has not saturated);
- for a held-out metric ``M`` (accuracy on an evaluation set, measured at some steps, ``M(0)`` before
  training), the pre-saturation gain ``Δ_sat = M(t_sat) − M(0)`` and the post-saturation residual
  ``Δ*_post = max_{t ≥ t_sat} M(t) − M(t_sat)``;
- a run saturates *rapidly* when ``t_sat < 100``.

The paper's finding: runs that generalise keep a long pre-saturation phase in which training reward and
held-out accuracy climb together (large ``Δ_sat``), while runs that saturate rapidly memorise (small
``Δ_sat`` and ``Δ*_post``).

Conventions where the paper is silent (each is also recorded in `SaturationReport.notes`):

- **NaN steps** (a step whose every reward was NaN, or a step missing from the log) are skipped: they
  count towards ``T`` (the run did take that step) but can be neither ``r̄_max`` nor ``t_sat``.
- **Non-positive rewards**: for ``r̄_max > 0`` the threshold is the paper's ``ε·r̄_max``. For
  ``r̄_max ≤ 0`` (rewards shifted below zero, e.g. a format penalty), ``ε·r̄_max`` lies *above* the maximum
  and could never be reached, so the threshold is taken as ``r̄_max − (1 − ε)·|r̄_max|``: the same relative
  distance below the maximum, and identical to ``ε·r̄_max`` whenever ``r̄_max > 0``.
- **Short runs**: ``T_eff < 1`` (``T ≤ tail``) gives ``t_sat = None`` with a note, never an error.
- **Held-out metric between evaluations**: ``M`` is *linearly interpolated* between the two measured steps
  around ``t`` (default) or read at the nearest measured step (``interpolation="nearest"``, ties to the
  earlier step). Interpolation is the default because evaluations are sparse (every 10–50 steps) while
  ``t_sat`` is step-exact: a one-step shift of ``t_sat`` then moves ``M(t_sat)`` by one step's worth of
  the trend rather than by a whole evaluation interval, and ``Δ*_post ≥ 0`` holds by construction.
  Outside the measured range ``M`` is held at the first / last measured value (no extrapolation).
- **No evaluation before training**: ``M(0)`` is taken from the earliest measured step, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from weakreward._numbers import is_int, is_real

Interpolation = Literal["linear", "nearest"]

__all__ = [
    "SaturationReport",
    "held_out_at",
    "saturation_gap",
    "saturation_report",
    "saturation_step",
    "saturation_threshold",
]


def _as_rewards(rewards: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(rewards, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(arr), arr, np.nan)


def _check_params(eps: float, tail: int) -> None:
    if not (is_real(eps) and 0.0 < float(eps) <= 1.0):
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    if not is_int(tail) or tail < 0:
        raise ValueError(f"tail must be a non-negative integer number of steps, got {tail!r}")


def saturation_threshold(r_max: float, eps: float = 0.99) -> float:
    """The reward level that counts as saturated: ``ε·r̄_max``, sign-aware.

    For ``r̄_max > 0`` this is the paper's ``ε·r̄_max``; for ``r̄_max ≤ 0`` it is
    ``r̄_max − (1 − ε)·|r̄_max|`` (the same relative distance below the maximum), so that a curve of
    negative rewards can saturate too.

    Args:
        r_max: The highest (smoothed) training reward of the run.
        eps: The fraction of ``r_max`` that counts as saturated.

    Examples:
        >>> saturation_threshold(0.8)
        0.792
        >>> round(saturation_threshold(-1.0), 6)
        -1.01
    """
    if r_max > 0:
        return float(eps * r_max)
    return float(r_max - (1.0 - eps) * abs(r_max))


def saturation_step(rewards: Sequence[float] | np.ndarray, eps: float = 0.99, tail: int = 50) -> int | None:
    """The saturation step ``t_sat = min{t ∈ 1..T_eff : r̄_t ≥ ε·r̄_max}`` (arXiv 2604.18574 §3.1).

    Args:
        rewards: ``[T]`` mean training reward per step; ``rewards[0]`` is step 1. NaN (or ±inf) marks a
            step without a reward: it counts towards ``T`` but is skipped otherwise.
        eps: ``ε`` in (0, 1]; the fraction of the maximum that counts as saturated.
        tail: The last ``tail`` steps cannot be ``t_sat`` (``T_eff = T − tail``); ``r̄_max`` is still taken
            over all ``T`` steps.

    Returns:
        The 1-based saturation step, or None when no step in ``1..T_eff`` reaches the threshold: the
        run is too short (``T_eff < 1``), every reward is NaN, or the reward was still rising in the last
        ``tail`` steps.

    Examples:
        >>> saturation_step([0.1, 0.5, 0.9, 1.0, 1.0, 1.0], tail=2)
        4
        >>> saturation_step([0.1, 0.2, 0.3, 0.4], tail=2) is None   # still rising at the end
        True
    """
    _check_params(eps, tail)
    r = _as_rewards(rewards)
    t_eff = len(r) - int(tail)
    if t_eff < 1 or np.all(np.isnan(r)):
        return None
    threshold = saturation_threshold(float(np.nanmax(r)), eps)
    # NaN >= x is False, so NaN steps are skipped here without a special case.
    hits = np.flatnonzero(r[:t_eff] >= threshold)
    return int(hits[0]) + 1 if hits.size else None


def held_out_at(
    steps: Sequence[int], values: Sequence[float], t: float, interpolation: Interpolation = "linear"
) -> float:
    """The held-out metric ``M(t)`` from measurements ``M(steps[i]) = values[i]``.

    Linear interpolation between the measured steps around ``t`` (or the nearest measured step, ties
    to the earlier one); held constant outside the measured range. NaN measurements are ignored; with
    none left the result is NaN.

    Args:
        steps: Steps at which the held-out metric was measured.
        values: The measurements, one per step.
        t: The step to read the metric at.
        interpolation: ``"linear"`` between the measured steps around ``t``, or the ``"nearest"`` one.

    Examples:
        >>> held_out_at([0, 10, 20], [0.2, 0.4, 0.5], 15)
        0.45
        >>> held_out_at([0, 10, 20], [0.2, 0.4, 0.5], 15, interpolation="nearest")
        0.4
    """
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if s.shape != v.shape:
        raise ValueError(f"steps and values differ in length: {s.size} != {v.size}")
    keep = np.isfinite(v) & np.isfinite(s)
    s, v = s[keep], v[keep]
    if s.size == 0:
        return math.nan
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    if interpolation == "linear":
        return float(np.interp(float(t), s, v))
    return float(v[int(np.argmin(np.abs(s - float(t))))])


@dataclass
class SaturationReport:
    """Saturation analysis of one run (arXiv 2604.18574 §3.1); see the module docstring for conventions.

    Attributes:
        t_sat: 1-based saturation step, or None (never saturated within ``T_eff``, or too short).
        num_steps: ``T``, the number of training steps (NaN steps included).
        t_eff: ``T − tail``.
        r_max: ``r̄_max`` (NaN when every reward is NaN).
        threshold: The reward level that counts as saturated (`saturation_threshold`).
        eps: ``ε``.
        tail: Steps excluded at the end.
        rapid: ``t_sat < rapid_before`` (None when ``t_sat`` is None).
        rapid_before: The rapid-saturation cut-off (100 in the paper).
        metric: Name of the held-out metric, or None when there is none.
        m0: ``M(0)``; NaN without held-out measurements.
        m_sat: ``M(t_sat)``.
        m_post_max: ``max_{t ≥ t_sat} M(t)``.
        delta_sat: ``Δ_sat = M(t_sat) − M(0)``; NaN when ``t_sat`` is None or there is no metric.
        delta_post: ``Δ*_post = max_{t ≥ t_sat} M(t) − M(t_sat)``; NaN likewise.
        interpolation: How ``M`` is read between measured steps.
        smooth: Width of the trailing moving average applied to the rewards first (1 = none, the paper).
        notes: Plain-language explanations of anything unusual (short run, NaN steps, no evaluations...).
        rewards: ``[T]`` the per-step rewards analysed (after smoothing), for plots.
        heldout_steps: Steps at which ``M`` was measured.
        heldout_values: ``M`` at those steps.
    """

    t_sat: int | None
    num_steps: int
    t_eff: int
    r_max: float
    threshold: float
    eps: float
    tail: int
    rapid: bool | None
    rapid_before: int
    metric: str | None = None
    m0: float = math.nan
    m_sat: float = math.nan
    m_post_max: float = math.nan
    delta_sat: float = math.nan
    delta_post: float = math.nan
    interpolation: str = "linear"
    smooth: int = 1
    notes: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list, repr=False)
    heldout_steps: list[int] = field(default_factory=list, repr=False)
    heldout_values: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None); ``curves=True`` keeps the per-step curves."""
        out = asdict(self)
        if not curves:
            for key in ("rewards", "heldout_steps", "heldout_values"):
                out.pop(key)

        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, list):
                return [clean(y) for y in x]
            return x

        return {k: clean(v) for k, v in out.items()}

    def table(self) -> str:
        """The summary as an aligned two-column text table (what ``weakreward report`` prints)."""

        def num(x: float) -> str:
            return "n/a" if x is None or not math.isfinite(x) else f"{x:+.4f}"

        rows = [
            ("steps T", str(self.num_steps)),
            ("T_eff = T - tail", f"{self.t_eff} (tail {self.tail})"),
            ("r_max", "n/a" if not math.isfinite(self.r_max) else f"{self.r_max:.4f}"),
            (f"threshold (eps {self.eps:g})", "n/a" if not math.isfinite(self.threshold) else f"{self.threshold:.4f}"),
            ("t_sat", "not reached" if self.t_sat is None else str(self.t_sat)),
            (
                f"rapid (t_sat < {self.rapid_before})",
                "n/a" if self.rapid is None else ("yes" if self.rapid else "no"),
            ),
            ("held-out metric M", self.metric or "none"),
            ("M(0)", num(self.m0).lstrip("+")),
            ("M(t_sat)", num(self.m_sat).lstrip("+")),
            ("delta_sat = M(t_sat) - M(0)", num(self.delta_sat)),
            ("delta*_post = max M(t>=t_sat) - M(t_sat)", num(self.delta_post)),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _moving_average(r: np.ndarray, window: int) -> np.ndarray:
    """Trailing NaN-aware moving average: step t averages the finite rewards of steps t−window+1..t."""
    if window <= 1:
        return r.copy()
    out = np.full_like(r, np.nan)
    for i in range(len(r)):
        chunk = r[max(0, i - window + 1) : i + 1]
        chunk = chunk[~np.isnan(chunk)]
        if chunk.size and not np.isnan(r[i]):
            out[i] = chunk.mean()
    return out


def saturation_report(
    rewards: Sequence[float] | np.ndarray,
    heldout: Mapping[int, float] | None = None,
    *,
    eps: float = 0.99,
    tail: int = 50,
    rapid_before: int = 100,
    interpolation: Interpolation = "linear",
    smooth: int = 1,
    metric: str | None = None,
) -> SaturationReport:
    """Saturation analysis of one run: ``t_sat``, ``Δ_sat``, ``Δ*_post`` and the rapid flag.

    Args:
        rewards: ``[T]`` mean training reward per step, ``rewards[0]`` is step 1; NaN = no reward.
        heldout: ``{step: M(step)}`` for the held-out metric; step 0 is the evaluation before training.
            None or empty: only the reward side is analysed (the ``Δ`` fields are NaN, with a note).
        eps: ``ε`` of `saturation_step`.
        tail: Steps excluded at the end (``T_eff = T − tail``).
        rapid_before: Flag rapid saturation when ``t_sat < rapid_before``.
        interpolation: ``"linear"`` or ``"nearest"``: how ``M`` is read between measured steps.
        smooth: Width of a trailing moving average applied to the rewards before the analysis. 1 (the
            default) is the paper's definition; a few steps help on a tiny run whose per-step reward is
            one small batch's noisy mean (``r̄_max`` is then an outlier and ``t_sat`` comes late).
        metric: The held-out metric's name, for the table.

    Returns:
        A `SaturationReport`.

    Examples:
        >>> ramp = [min(t / 100, 1.0) for t in range(1, 301)]           # rises until step 100
        >>> rep = saturation_report(ramp, {0: 0.20, 100: 0.50, 200: 0.52, 300: 0.51})
        >>> rep.t_sat, rep.rapid, round(rep.delta_sat, 4), round(rep.delta_post, 4)
        (99, True, 0.297, 0.023)
    """
    _check_params(eps, tail)
    if not is_int(rapid_before) or rapid_before < 1:
        raise ValueError(f"rapid_before must be a positive integer, got {rapid_before!r}")
    if not is_int(smooth) or smooth < 1:
        raise ValueError(f"smooth must be a positive integer window, got {smooth!r}")
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")

    raw = _as_rewards(rewards)
    r = _moving_average(raw, int(smooth))
    notes: list[str] = []
    num_steps = len(r)
    t_eff = num_steps - int(tail)
    n_nan = int(np.isnan(raw).sum())
    finite = r[~np.isnan(r)]
    r_max = float(finite.max()) if finite.size else math.nan
    threshold = saturation_threshold(r_max, eps) if finite.size else math.nan

    if num_steps == 0:
        notes.append("no training steps were logged")
    elif not finite.size:
        notes.append(f"all {num_steps} steps have a NaN training reward: nothing to analyse")
    elif n_nan:
        notes.append(f"{n_nan} of {num_steps} steps have no finite training reward and were skipped")
    if num_steps and t_eff < 1:
        notes.append(
            f"the run is too short for the definition: T = {num_steps} steps <= tail = {tail}, so T_eff < 1 "
            "and t_sat is undefined (train longer or pass a smaller tail)"
        )
    if finite.size and r_max <= 0:
        notes.append(
            f"r_max = {r_max:.4g} <= 0: eps*r_max would lie above the maximum, so the threshold is "
            "r_max - (1 - eps)*|r_max| instead"
        )
    if smooth > 1:
        notes.append(f"rewards smoothed by a trailing {smooth}-step moving average before the analysis")

    t_sat = saturation_step(r, eps, tail)
    if t_sat is None and finite.size and t_eff >= 1:
        notes.append(
            f"the training reward never reached {threshold:.4g} (eps*r_max) within the first T_eff = {t_eff} "
            "steps: it was still rising near the end, so the run has not saturated"
        )
    rapid = None if t_sat is None else bool(t_sat < rapid_before)

    report = SaturationReport(
        t_sat=t_sat,
        num_steps=num_steps,
        t_eff=t_eff,
        r_max=r_max,
        threshold=threshold,
        eps=float(eps),
        tail=int(tail),
        rapid=rapid,
        rapid_before=int(rapid_before),
        metric=metric,
        interpolation=interpolation,
        smooth=int(smooth),
        notes=notes,
        rewards=[float(x) for x in r],
    )

    items = sorted((int(s), float(v)) for s, v in (heldout or {}).items())
    items = [(s, v) for s, v in items if math.isfinite(v)]
    report.heldout_steps = [s for s, _ in items]
    report.heldout_values = [v for _, v in items]
    if not items:
        notes.append(
            "no held-out evaluations were logged: delta_sat and delta*_post need a held-out metric "
            "(set an eval set and eval_every in the trainer)"
        )
        return report
    steps = [s for s, _ in items]
    values = [v for _, v in items]
    if steps[0] != 0:
        notes.append(
            f"no evaluation before training (step 0): M(0) is taken from the first evaluation, step {steps[0]}"
        )
    report.m0 = values[0]
    if t_sat is None:
        return report
    if len(items) == 1:
        notes.append("only one evaluation point: M is constant, so both deltas are 0 by construction")
    if t_sat > steps[-1]:
        notes.append(f"t_sat = {t_sat} is after the last evaluation (step {steps[-1]}): M(t_sat) is held at that value")
    m_sat = held_out_at(steps, values, t_sat, interpolation)
    after = [v for s, v in items if s >= t_sat]
    m_post = max([m_sat, *after])
    report.m_sat = m_sat
    report.m_post_max = m_post
    report.delta_sat = m_sat - report.m0
    report.delta_post = m_post - m_sat
    return report


def saturation_gap(large: SaturationReport, small: SaturationReport) -> float:
    """The large-vs-small gap ``G_sat = Δ_sat(large) − Δ_sat(small)``.

    The paper compares a run on plenty of training data with one on scarce data (e.g. 2048 vs 8
    problems) and reads how much of the held-out gain the scarce run keeps before it saturates. We define
    the gap as the difference of the pre-saturation gains: positive when the large-data run gains more
    before saturating; close to 0 when scarce data costs nothing (the paper's Qwen-Math on math).
    NaN when either run has no ``Δ_sat`` (never saturated, or no held-out metric).

    Args:
        large: The report of the run on plenty of training data.
        small: The report of the run on scarce data.

    Examples:
        >>> big = saturation_report([min(t / 200, 1.0) for t in range(1, 401)], {0: 0.2, 200: 0.6, 400: 0.6})
        >>> tiny = saturation_report([min(t / 20, 1.0) for t in range(1, 401)], {0: 0.2, 20: 0.25, 400: 0.25})
        >>> round(saturation_gap(big, tiny), 3)
        0.346
    """
    return float(large.delta_sat - small.delta_sat)
