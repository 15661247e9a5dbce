"""`SaturationTracker`: the saturation analysis, live, as a trainer callback.

The tracker reads the same values the trainer writes to ``metrics.jsonl`` (``reward/mean`` every step,
a held-out metric on evaluation steps), keeps the curves, and warns once when the run enters the regime
arXiv 2604.18574 associates with memorisation: the training reward has saturated while the held-out
metric has stopped rising.

"Saturated" live is the paper's definition applied to the steps seen so far: at step ``T`` the reward
has saturated when `saturation_step` of the first ``T`` rewards (same ``ε`` and ``tail``) is not None,
i.e. the reward reached ``ε·r̄_max`` at least ``tail`` steps ago and has not risen meaningfully since.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from weakreward._numbers import real_or_none
from weakreward.dynamics.saturation import (
    Interpolation,
    SaturationReport,
    _moving_average,
    held_out_at,
    saturation_report,
    saturation_step,
)
from weakreward.grpo.callbacks import Callback

__all__ = ["MemorisationWarning", "SaturationTracker", "default_heldout_key"]

logger = logging.getLogger("weakreward.dynamics")

# Accuracy-like evaluation metrics, in order of preference: mean accuracy over samples first.
_EVAL_PREFERENCE = (
    re.compile(r"^eval/(?:.*/)?avg@\d+$"),
    re.compile(r"^eval/(?:.*/)?(?:acc|accuracy|mean_accuracy)$"),
    re.compile(r"^eval/(?:.*/)?pass@1$"),
    re.compile(r"^eval/(?:.*/)?(?:mean|score|reward/mean)$"),
)
_MONITOR = re.compile(r"^monitor/.+/mean$")


class MemorisationWarning(UserWarning):
    """The training reward saturated while the held-out metric stopped rising (arXiv 2604.18574's
    memorisation regime)."""


def default_heldout_key(keys: Iterable[str]) -> str | None:
    """The held-out metric to track when none is named.

    The first ``eval/...`` accuracy key (``avg@n``, then ``acc``/``accuracy``, then ``pass@1``, then a
    mean score), else the first ``monitor/<name>/mean`` (a monitor reward on the *training* batch, such as
    the true verifier under a noisy reward: not held-out, but the best signal left), else None.

    Examples:
        >>> default_heldout_key(["step", "reward/mean", "eval/pass@2", "eval/avg@4"])
        'eval/avg@4'
        >>> default_heldout_key(["reward/mean", "monitor/math/mean"])
        'monitor/math/mean'
    """
    keys = list(keys)
    for pattern in _EVAL_PREFERENCE:
        for key in keys:
            if pattern.match(key):
                return key
    for key in keys:
        if _MONITOR.match(key):
            return key
    return None


class SaturationTracker(Callback):
    """Tracks training-reward saturation live and warns once on the memorisation regime.

    Add it to the trainer's callbacks; it reads each step's ``reward_key`` and the held-out ``metric``
    from the metric dicts the trainer passes to `on_step_end` / `on_evaluate`. `report` gives the full
    `SaturationReport` of the steps seen so far at any time.

    The warning (a `MemorisationWarning` through `warnings.warn`, and a log record on the
    ``weakreward.dynamics`` logger) fires once, when both hold:

    1. the training reward has saturated: `saturation_step` of the rewards so far is not None;
    2. the held-out metric has stopped rising: at least ``patience`` evaluations at or after ``t_sat``,
       and none of them exceeds ``M(t_sat)`` by more than ``min_delta`` (``Δ*_post ≤ min_delta`` so far).

    Args:
        metric: The held-out metric key (``"eval/avg@4"``, ``"monitor/math/mean"``...); None picks one
            with `default_heldout_key` from the first metrics that contain one.
        reward_key: The training-reward key.
        eps: ``ε`` of `saturation_step`.
        tail: ``tail`` of `saturation_step`; also how long the reward must have stayed saturated live.
        rapid_before: Rapid-saturation cut-off for `report`.
        patience: Evaluations at or after ``t_sat`` needed before judging the held-out trend.
        min_delta: Held-out improvement after ``t_sat`` that still counts as "stopped rising".
        smooth: Moving-average width applied to the rewards (1 = the paper's definition).
        interpolation: How ``M`` is read between evaluations.
        warn: Emit the warning (the state is tracked either way: see `memorising`).

    Examples:
        >>> import warnings
        >>> tracker = SaturationTracker(metric="eval/avg@4", tail=5, patience=2)
        >>> tracker.on_evaluate(None, 0, {"eval/avg@4": 0.30})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     for step in range(1, 31):
        ...         tracker.on_step_end(None, step, {"step": step, "reward/mean": min(step / 5, 1.0)})
        ...         if step % 5 == 0:
        ...             tracker.on_evaluate(None, step, {"eval/avg@4": 0.31})
        >>> tracker.saturated_at, tracker.memorising, len(caught)
        (5, True, 1)
    """

    def __init__(
        self,
        metric: str | None = None,
        *,
        reward_key: str = "reward/mean",
        eps: float = 0.99,
        tail: int = 50,
        rapid_before: int = 100,
        patience: int = 2,
        min_delta: float = 0.0,
        smooth: int = 1,
        interpolation: Interpolation = "linear",
        warn: bool = True,
    ) -> None:
        if not (0.0 < eps <= 1.0):
            raise ValueError(f"SaturationTracker.eps must be in (0, 1], got {eps!r}")
        if tail < 0:
            raise ValueError(f"SaturationTracker.tail must be >= 0, got {tail!r}")
        if patience < 1:
            raise ValueError(f"SaturationTracker.patience must be >= 1, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"SaturationTracker.min_delta must be >= 0, got {min_delta!r}")
        if smooth < 1:
            raise ValueError(f"SaturationTracker.smooth must be >= 1, got {smooth!r}")
        self.metric = metric
        self.reward_key = reward_key
        self.eps = float(eps)
        self.tail = int(tail)
        self.rapid_before = int(rapid_before)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.smooth = int(smooth)
        self.interpolation: Interpolation = interpolation
        self.warn = warn
        self.rewards: dict[int, float] = {}
        self.heldout: dict[int, float] = {}
        self.saturated_at: int | None = None
        self.memorising = False
        self.warned = False

    # -- callback hooks ---------------------------------------------------------------------------
    def on_train_begin(self, trainer: Any) -> None:
        """On a resumed run, replay the steps already in the trainer's ``history`` (read back from
        ``metrics.jsonl``) so the curves start complete."""
        history = getattr(trainer, "history", None)
        if self.rewards or not isinstance(history, list):
            return
        for row in history:
            if isinstance(row, Mapping) and isinstance(row.get("step"), int):
                self.update(row["step"], row)

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """Record the step's training reward (and any held-out metric in it); see `update`.

        Args: as `Callback.on_step_end`.
        """
        self.update(step, metrics)

    def on_evaluate(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """Record the evaluation's held-out metric; see `update`.

        Args: as `Callback.on_evaluate`.
        """
        self.update(step, metrics)

    def on_train_end(self, trainer: Any) -> None:
        if self.rewards:
            logger.info("saturation report:\n%s", self.report().table())

    # -- state --------------------------------------------------------------------------------------
    def update(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Record one metrics dict (step rewards and/or evaluation results) and re-check saturation.

        Args:
            step: The step (1-based; 0 for the evaluation before training).
            metrics: That step's metrics (training reward and/or held-out metric).
        """
        step = int(step)
        reward = real_or_none(metrics.get(self.reward_key))
        if reward is not None and step >= 1:
            self.rewards[step] = reward
        if self.metric is None:
            self.metric = default_heldout_key(metrics.keys())
        if self.metric is not None:
            value = real_or_none(metrics.get(self.metric))
            if value is not None and math.isfinite(value):
                self.heldout[step] = value
        self._check()

    def reward_curve(self) -> np.ndarray:
        """``[T]`` rewards of steps 1..T seen so far (NaN where a step was not seen)."""
        if not self.rewards:
            return np.zeros(0)
        curve = np.full(max(self.rewards), np.nan)
        for step, value in self.rewards.items():
            curve[step - 1] = value
        return curve

    def report(self) -> SaturationReport:
        """The `SaturationReport` of everything seen so far (``T`` = the last step seen)."""
        return saturation_report(
            self.reward_curve(),
            self.heldout,
            eps=self.eps,
            tail=self.tail,
            rapid_before=self.rapid_before,
            interpolation=self.interpolation,
            smooth=self.smooth,
            metric=self.metric,
        )

    def _check(self) -> None:
        curve = self.reward_curve()
        if self.smooth > 1:
            curve = _moving_average(curve, self.smooth)
        t_sat = saturation_step(curve, self.eps, self.tail) if curve.size else None
        self.saturated_at = t_sat
        if t_sat is None or self.memorising:
            return
        after = [v for s, v in self.heldout.items() if s >= t_sat]
        if len(after) < self.patience:
            return
        steps = sorted(self.heldout)
        m_sat = held_out_at(steps, [self.heldout[s] for s in steps], t_sat, self.interpolation)
        gain = max(after) - m_sat
        if gain > self.min_delta:
            return
        self.memorising = True
        if self.warn and not self.warned:
            self.warned = True
            message = (
                f"training reward saturated at step {t_sat} (reached {self.eps:g} of its maximum and stayed "
                f"there for {self.tail} steps) while the held-out metric {self.metric!r} stopped rising "
                f"({len(after)} evaluations since, best gain {gain:+.4f} over M(t_sat) = {m_sat:.4f}): "
                "arXiv 2604.18574 reads this as memorisation rather than learning; more training data, "
                "a stronger reward, or SFT on reasoning traces before RL may help"
            )
            logger.warning(message)
            warnings.warn(message, MemorisationWarning, stacklevel=2)
