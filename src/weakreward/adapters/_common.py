"""What the three trainer adapters share: text and label normalisation, group checks, detail flattening."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from weakreward.data.parquet import decode_ground_truth
from weakreward.rewards.base import Reward
from weakreward.rollouts import Rollouts

Scalar = bool | int | float | str | None


def reject_token_stats(reward: Reward, trainer: str, alternative: str) -> None:
    """Raise ``ValueError`` when ``reward`` reads token statistics, which ``trainer`` cannot hand it."""
    needs = sorted(n for n in reward.needs if n.split(".", 1)[0] == "token_stats")
    if needs:
        raise ValueError(
            f"{reward.name} needs {', '.join(needs)}, which {trainer} does not pass to reward functions. "
            f"{alternative} Alternatively compute them yourself from the policy's logits with "
            "weakreward.token_stats_from_logits(logits, token_ids, mask, temperature), or train with "
            "weakreward's own GRPOTrainer, which fills Rollouts.token_stats."
        )


def check_group_options(owner: str, group_size: int | None, nan_score: float) -> None:
    """Validate the options every batch adapter shares; the error names ``owner`` and the field."""
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"{owner}: group_size must be a positive int or None, got {group_size!r}")
    if not math.isfinite(nan_score):
        raise ValueError(f"{owner}: nan_score must be finite, got {nan_score!r}")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is; for chat messages, the assistant messages' content.

    A conversational completion (``[{"role": "assistant", "content": ...}, ...]``) yields the content
    of its assistant messages joined by newlines; multimodal content parts (``[{"type": "text",
    "text": ...}]``) contribute their text parts. Anything else becomes ``""`` (and then scores as a
    completion without an answer), never an exception.

    Examples:
        >>> completion_text([{"role": "assistant", "content": "\\\\boxed{4}"}])
        '\\\\boxed{4}'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, Sequence):
        return ""
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            parts.extend(
                str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"
            )
    return "\n".join(parts)


def is_missing(value: Any) -> bool:
    """True for None and float NaN (pandas' missing value)."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def reference_text(value: Any, *, parse_json_list: bool = False) -> str | None:
    """A gold label as text, or None where there is none.

    Lists and tuples give their first entry (a one-answer label stored as a list). With
    ``parse_json_list``, a string holding a JSON list *of strings* (verl files store ``'["18"]'``) is
    parsed first; other text that merely looks like a list, such as the interval ``"[0, 1]"``, is kept.

    Examples:
        >>> reference_text('["18"]', parse_json_list=True), reference_text("[0, 1]", parse_json_list=True)
        ('18', '[0, 1]')
        >>> reference_text(float("nan")), reference_text(7)
        (None, '7')
    """
    if parse_json_list and isinstance(value, str):
        value = decode_ground_truth(value)[0]  # the one decoder of the paper's JSON-list labels
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if is_missing(value):
        return None
    return value if isinstance(value, str) else str(value)


def check_whole_groups(
    reward: Reward,
    rollouts: Rollouts,
    *,
    trainer: str,
    fix: str,
    group_size: int | None = None,
) -> None:
    """For a group reward, raise ``ValueError`` when the call holds a split (partial) group.

    With ``group_size`` known, every group must hold a multiple of it (a prompt may appear twice);
    without it, a group of one completion is the tell-tale of a split, since GRPO needs two or more.
    Rewards that score each completion alone are not checked.
    """
    if not reward.sees_groups:
        return
    for gid, idx in rollouts.groups().items():
        size = len(idx)
        bad = size % group_size != 0 if group_size else size < 2
        if bad:
            expected = f"a multiple of {group_size}" if group_size else "at least 2"
            shown = str(gid) if len(str(gid)) <= 80 else str(gid)[:77] + "..."
            raise ValueError(
                f"{reward.name} sees whole groups, but {trainer} passed {size} completion(s) of group {shown!r} "
                f"in one call (expected {expected}): the group was split and its score would be wrong. {fix}"
            )


def to_scalar(value: Any) -> tuple[bool, Scalar]:
    """``(ok, value)``: numpy scalars become Python ones; ``ok`` is False for non-scalars."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    return False, None


def scalar_columns(details: Mapping[str, Sequence[Any]]) -> dict[str, list[Scalar]]:
    """The detail columns whose every entry is a scalar (str, number, bool or None), as Python lists."""
    out: dict[str, list[Scalar]] = {}
    for key, column in details.items():
        values = []
        for v in column:
            ok, s = to_scalar(v)
            if not ok:
                break
            values.append(s)
        else:
            out[key] = values
    return out


def numeric_columns(details: Mapping[str, Sequence[Any]]) -> dict[str, list[float]]:
    """The detail columns whose every entry is a number or bool, as floats (None → NaN)."""
    out: dict[str, list[float]] = {}
    for key, column in scalar_columns(details).items():
        if any(isinstance(v, str) for v in column):
            continue
        if all(v is None for v in column):
            continue
        out[key] = [math.nan if v is None else float(v) for v in column]
    return out


def dedupe_groups(keys: Sequence[Hashable], group_size: int | None) -> list[Hashable]:
    """Group ids from per-completion keys; with ``group_size``, the k-th block of ``group_size``
    completions sharing a key becomes its own group (``key``, then ``key#2``, ...), so a prompt drawn
    twice into one batch gives two groups, not one of double size."""
    if not group_size:
        return list(keys)
    seen: dict[Hashable, int] = {}
    out: list[Hashable] = []
    for key in keys:
        block = seen.get(key, 0) // group_size
        seen[key] = seen.get(key, 0) + 1
        out.append(key if block == 0 else f"{key}#{block + 1}")
    return out
