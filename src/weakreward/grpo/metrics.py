"""`MetricsWriter`: ``metrics.jsonl`` with one complete JSON line per step, safe across crashes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from weakreward._numbers import real_or_none


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null reads back as "not available"
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    return value


def read_metric_lines(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], int]:
    """The rows of a ``metrics.jsonl`` that are JSON objects with a step number (≥ 0), and how many
    non-blank lines were not (a torn last line, hand edits); a missing file has no rows.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1}\\n[1]\\n{"step": true}\\n\\n{"step": 2}\\n{"st')
        >>> read_metric_lines(p)
        ([{'step': 1}, {'step': 2}], 3)
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    rows, skipped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        step = real_or_none(row.get("step")) if isinstance(row, dict) else None
        if step is None or not math.isfinite(step) or step < 0:
            skipped += 1
            continue
        rows.append(row)
    return rows, skipped


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete step line of a ``metrics.jsonl`` (`read_metric_lines` without the count).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1}\\n{"step": 2}\\n{"st')
        >>> [r["step"] for r in read_metrics(p)]
        [1, 2]
    """
    return read_metric_lines(path)[0]


class MetricsWriter:
    """Appends one JSON object per step to ``path``, flushed and fsynced before `write` returns.

    Args:
        path: The ``metrics.jsonl`` file.
        resume_step: When resuming from a checkpoint at this step, lines of later steps (written after
            the checkpoint, before the crash) and any torn line are dropped first, atomically, so the
            file never holds a duplicated or partial step. None starts a fresh file.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> w = MetricsWriter(p); w.write({"step": 1, "loss": 0.5}); w.write({"step": 2, "loss": float("nan")})
        >>> MetricsWriter(p, resume_step=1).write({"step": 2, "loss": 0.25})
        >>> read_metrics(p)
        [{'step': 1, 'loss': 0.5}, {'step': 2, 'loss': 0.25}]
    """

    def __init__(self, path: str | os.PathLike[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [] if resume_step is None else [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in kept:
                f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def write(self, metrics: dict[str, Any]) -> None:
        """Append ``metrics`` as one line (NaN and inf become null)."""
        line = json.dumps({k: _jsonable(v) for k, v in metrics.items()}) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
