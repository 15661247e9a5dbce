"""`Problem`: one training or evaluation problem (prompt, label, per-model difficulty, metadata)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from weakreward._numbers import is_real
from weakreward.rollouts import Prompt, prompt_key

_FIELDS = ("prompt", "answer", "difficulty", "meta")


def _normalise_prompt(prompt: Any, where: str) -> Prompt:
    """Plain text stays text; any sequence of chat messages (list, tuple, numpy array) becomes a list of dicts."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Mapping) or not hasattr(prompt, "__iter__"):
        raise TypeError(f"{where}.prompt must be a string or a list of chat messages, got {type(prompt).__name__}")
    messages = []
    for i, message in enumerate(prompt):
        if not isinstance(message, Mapping):
            raise TypeError(f"{where}.prompt[{i}] must be a chat message mapping, got {type(message).__name__}")
        if "role" not in message or "content" not in message:
            raise ValueError(f"{where}.prompt[{i}] needs 'role' and 'content', got keys {sorted(message)}")
        if message["content"] is None or message["role"] is None:
            raise ValueError(f"{where}.prompt[{i}] has a null 'role' or 'content'")
        messages.append(dict(message))
    if not messages:
        raise ValueError(f"{where}.prompt is an empty list of messages")
    return messages


def _normalise_difficulty(difficulty: Any, where: str) -> dict[str, int]:
    """``{model: solved-count}``; None values are dropped, integral floats (``13.0``) become ints."""
    if difficulty is None:
        return {}
    if not isinstance(difficulty, Mapping):
        raise TypeError(f"{where}.difficulty must be a mapping model -> int, got {type(difficulty).__name__}")
    out: dict[str, int] = {}
    for model, value in difficulty.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if not is_real(value):
            raise TypeError(f"{where}.difficulty[{model!r}] must be an int, got {value!r}")
        as_float = float(value)
        if as_float != int(as_float):
            raise ValueError(f"{where}.difficulty[{model!r}] must be a whole number of solved samples, got {value!r}")
        out[str(model)] = int(as_float)
    return out


@dataclass(frozen=True)
class Problem:
    """One problem: what the trainer prompts with, what the verifier checks against, and how hard it is.

    Attributes:
        prompt: Plain text or a list of chat messages (``[{"role": "user", "content": ...}, ...]``).
        answer: The label the reward sees (``Rollouts.references``); None for unlabeled problems.
            After `weakreward.corrupt_labels` it may be wrong on purpose; the true label is then in
            ``meta["original_answer"]``.
        difficulty: Per model, how many of 16 samples solved the problem (the paper's solve@16, used by
            `weakreward.data.scarce` to stratify); may be empty.
        meta: Everything else (data source, index, the source file and row, ...).

    Build from a plain mapping with `Problem.from_dict` (unknown keys go to ``meta``).

    Examples:
        >>> p = Problem.from_dict({"prompt": "What is 2+2?", "answer": "4", "source": "toy"})
        >>> p.answer, p.meta, p.key
        ('4', {'source': 'toy'}, 'What is 2+2?')
    """

    prompt: Prompt
    answer: str | None = None
    difficulty: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", _normalise_prompt(self.prompt, "Problem"))
        if self.answer is not None and not isinstance(self.answer, str):
            raise TypeError(f"Problem.answer must be a string or None, got {type(self.answer).__name__}")
        object.__setattr__(self, "difficulty", _normalise_difficulty(self.difficulty, "Problem"))
        if not isinstance(self.meta, Mapping):
            raise TypeError(f"Problem.meta must be a mapping, got {type(self.meta).__name__}")
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def key(self) -> str:
        """The prompt's stable text key (`weakreward.rollouts.prompt_key`), also the default group id."""
        return prompt_key(self.prompt)

    @property
    def question(self) -> str:
        """The text of the last user message (the prompt itself when it is plain text)."""
        if isinstance(self.prompt, str):
            return self.prompt
        users = [m for m in self.prompt if m.get("role") == "user"]
        return str((users or list(self.prompt))[-1]["content"])

    @property
    def extras(self) -> dict[str, Any]:
        """This problem's `Rollouts.extras` columns: ``meta``, plus ``difficulty`` when there is one.

        Examples:
            >>> Problem("1+1=", "2", difficulty={"m": 3}, meta={"source": "toy"}).extras
            {'source': 'toy', 'difficulty': {'m': 3}}
        """
        return {**self.meta, "difficulty": self.difficulty} if self.difficulty else dict(self.meta)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Problem) -> Problem:
        """A `Problem` from a mapping with ``prompt`` and optional ``answer``, ``difficulty``, ``meta``.

        Keys other than these four are merged into ``meta`` (explicit ``meta`` entries win). A `Problem`
        is returned unchanged.
        """
        if isinstance(data, Problem):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"Problem.from_dict needs a mapping, got {type(data).__name__}")
        if "prompt" not in data:
            raise ValueError(f"Problem.from_dict: the mapping has no 'prompt' (keys: {sorted(data)})")
        meta = {k: v for k, v in data.items() if k not in _FIELDS}
        meta.update(data.get("meta") or {})
        answer = data.get("answer")
        return cls(prompt=data["prompt"], answer=answer, difficulty=data.get("difficulty") or {}, meta=meta)

    def to_dict(self) -> dict[str, Any]:
        """``{"prompt", "answer", "difficulty", "meta"}`` as plain Python objects (copies)."""
        prompt = self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]
        return {"prompt": prompt, "answer": self.answer, "difficulty": dict(self.difficulty), "meta": dict(self.meta)}

    def with_answer(self, answer: str | None, **meta: Any) -> Problem:
        """A copy with a new ``answer`` and ``meta`` updated with ``meta``.

        Args:
            answer: The new label.
            **meta: Entries merged into ``meta``.
        """
        return replace(self, answer=answer, meta={**self.meta, **meta})


def as_problems(problems: Sequence[Problem | Mapping[str, Any]]) -> list[Problem]:
    """Each item as a `Problem` (mappings go through `Problem.from_dict`)."""
    if isinstance(problems, (str, bytes, Mapping)):
        raise TypeError(f"expected a sequence of problems, got {type(problems).__name__}")
    return [Problem.from_dict(p) for p in problems]
