"""Trainer callbacks: subclass `Callback` and override the hooks you need."""

from __future__ import annotations

from typing import Any


class Callback:
    """Hooks the trainer calls; each default does nothing.

    ``metrics`` is the flat dict written to ``metrics.jsonl`` for that step (``step``, ``reward/mean``,
    ``monitor/<name>/mean``, ``eval/...``).
    """

    def on_train_begin(self, trainer: Any) -> None:
        """Before the first step (after a resume, before the first new step)."""

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """After each optimizer step, with the step's metrics."""

    def on_evaluate(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """After each evaluation, with the ``eval/...`` metrics."""

    def on_train_end(self, trainer: Any) -> None:
        """After the last step."""
