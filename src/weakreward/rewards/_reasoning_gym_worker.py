"""The reasoning-gym engine behind `weakreward.ReasoningGymVerifier`, run in `TimeoutPool` workers.

A standalone file (standard library and reasoning-gym only; see ``timeout_pool``). A task's
``score_answer`` runs arbitrary task code on model output (a simulation, a graph search, a parser), so
it runs here, where the parent's hard deadline can stop it.

The context is the task name; a payload is ``(answer, entry)``. A result is ``("scored", value)`` with
the scorer's raw value, ``("error: unknown task 'name'", None)``, or ``("error: <exception>", None)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Engine:
    """reasoning-gym's scorers, looked up once per task."""

    def __init__(self) -> None:
        import reasoning_gym

        self.get = reasoning_gym.get_score_answer_fn
        self.scorers: dict[str, Callable[..., Any]] = {}

    def run(self, task: str, payload: tuple[str, dict[str, Any]], options: dict[str, Any]) -> tuple[str, Any]:
        scorer = self.scorers.get(task)
        if scorer is None:
            try:
                scorer = self.get(task)
            except ValueError:
                return f"error: unknown task {task!r}", None
            self.scorers[task] = scorer
        answer, entry = payload
        return "scored", float(scorer(answer, entry))
