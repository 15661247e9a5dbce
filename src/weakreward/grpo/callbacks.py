"""Trainer callbacks: subclass `Callback` and override the hooks you need."""

from __future__ import annotations

from typing import Any


class Callback:
    """Hooks the trainer calls; each default does nothing.

    ``metrics`` is the flat dict written to ``metrics.jsonl`` for that step (``step``, ``reward/mean``,
    ``monitor/<name>/mean``, ``eval/...``).

    Examples:
        Keep the training-reward curve in memory (pass it as ``GRPOTrainer(..., callbacks=[curve])``):

        >>> class RewardCurve(Callback):
        ...     def __init__(self):
        ...         self.points = []
        ...     def on_step_end(self, trainer, step, metrics):
        ...         self.points.append((step, metrics["reward/mean"]))
        >>> curve = RewardCurve()
        >>> curve.on_step_end(None, 1, {"step": 1, "reward/mean": 0.25})
        >>> curve.points
        [(1, 0.25)]
    """

    def on_train_begin(self, trainer: Any) -> None:
        """Before the first step (after a resume, before the first new step)."""

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """After each optimizer step, with the step's metrics.

        Args:
            trainer: The `GRPOTrainer`.
            step: The step just finished (1-based).
            metrics: That step's metrics.
        """

    def on_evaluate(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """After each evaluation, with the ``eval/...`` metrics.

        Args:
            trainer: The `GRPOTrainer`.
            step: The step evaluated after (0 = before training).
            metrics: The evaluation metrics.
        """

    def on_train_end(self, trainer: Any) -> None:
        """After the last step."""
