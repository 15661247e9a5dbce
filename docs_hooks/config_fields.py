"""MkDocs hook: replace ``<!-- fields: module.Class -->`` with a table of a pydantic model's fields.

Each row comes from the field's ``Field(description=...)`` and default, so the docs never drift from
the code (pydantic descriptions are the one place a config field is documented).
"""

from __future__ import annotations

import importlib
import re

_MARKER = re.compile(r"<!-- fields: ([\w.]+) -->")


def _table(path: str) -> str:
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rows = ["| field | default | description |", "| --- | --- | --- |"]
    for field, info in cls.model_fields.items():
        default = info.default_factory() if info.default_factory is not None else info.default
        text = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{field}` | `{default!r}` | {text} |".replace("`'", "`\"").replace("'`", "\"`"))
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    return _MARKER.sub(lambda m: _table(m.group(1)), markdown)
