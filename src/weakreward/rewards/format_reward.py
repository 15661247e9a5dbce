"""`FormatReward`: 1 when the completion has the expected shape (a boxed answer, a think block...)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, field_validator

from weakreward.rewards.base import Reward, RewardResult, reward_dataclass
from weakreward.rollouts import Rollouts

# A non-empty \boxed{...}: "\boxed", optional spaces, "{", then something other than "}" or a space.
# Constant work per "\boxed" occurrence, so a search is linear in the text.
_BOXED = r"\\boxed\s*\{\s*[^\s}]"
# "<think>" at the start, the first "</think>", then a boxed answer. The think body is a tempered token
# that cannot run past a "</think>", so there is one way to match it and a failed search stays linear
# instead of retrying every later "</think>".
_THINK_THEN_BOXED = r"\A\s*<think>(?:(?!</think>).)*</think>.*?" + _BOXED


@reward_dataclass
class FormatReward(Reward):
    """1 if the completion matches a regular expression, else 0: a format reward.

    Format rewards pay for the shape of an answer, not its correctness. DeepSeek-R1 (DeepSeek-AI 2025,
    arXiv 2501.12948) pairs accuracy with a ``<think>…</think>`` format reward; Shao et al. 2025
    ("Spurious Rewards", arXiv 2506.10947) find a reward for merely producing a ``\\boxed{}`` answer
    already lifts Qwen2.5-Math's accuracy. Typical use is as a gate:
    ``Gate(FormatReward.boxed(), MajorityVote())``.

        ``r(y) = 1[re.search(pattern, y, re.DOTALL) is not None]``

    ``re.search`` is used (anchor with ``\\A`` / ``\\Z`` to match the whole completion). Python's ``re``
    backtracks, so a pattern with nested or adjacent unbounded repeats can take time exponential (or
    quadratic) in the text: keep patterns simple, as the presets are (both linear-time), and
    ``max_chars`` caps the text any pattern ever sees.

    Args:
        pattern: The regular expression, compiled with ``re.DOTALL``.
        max_chars: Completions longer than this score 0 with reason ``"too long"`` without being searched.
        name: The reward's name (detail prefix when composed).

    Scores: 1 match, 0 otherwise. ``details``: ``reason`` (``"match"``, ``"no match"``, ``"too long"``).

    Examples:
        >>> fmt = FormatReward.think_then_boxed()
        >>> fmt.score(["<think>2+2=4</think> so \\\\boxed{4}", "\\\\boxed{4}", "<think>hm</think> 4"]).scores.tolist()
        [1.0, 0.0, 0.0]
        >>> FormatReward(r"answer: \\d+").score(["The answer: 12"]).scores.tolist()
        [1.0]
    """

    pattern: str
    max_chars: Annotated[int, Field(ge=1)] = 200_000
    name: Annotated[str, Field(min_length=1)] = "format"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern, re.DOTALL)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc}): {pattern!r}") from None
        return pattern

    _regex: ClassVar[re.Pattern[str]]  # compiled per instance in __post_init__

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern, re.DOTALL))

    @classmethod
    def boxed(cls, *, max_chars: int = 200_000) -> FormatReward:
        """A non-empty ``\\boxed{...}`` answer appears anywhere in the completion.

        Examples:
            >>> FormatReward.boxed().score(["so \\\\boxed{\\\\frac{1}{2}}", "\\\\boxed{}", "1/2"]).scores.tolist()
            [1.0, 0.0, 0.0]
        """
        return cls(_BOXED, max_chars=max_chars, name="format_boxed")

    @classmethod
    def think_then_boxed(cls, *, max_chars: int = 200_000) -> FormatReward:
        """The completion opens with ``<think>`` (after optional whitespace), closes it with
        ``</think>``, and gives a non-empty ``\\boxed{...}`` answer after the first ``</think>``.

        For chat templates that put ``<think>`` in the prompt, use
        ``FormatReward(r"</think>.*?\\\\boxed\\s*\\{\\s*[^\\s}]")`` instead.
        """
        return cls(_THINK_THEN_BOXED, max_chars=max_chars, name="format_think_boxed")

    def compute(self, rollouts: Rollouts) -> RewardResult:
        scores = np.zeros(len(rollouts))
        reasons = []
        for i, text in enumerate(rollouts.completions):
            if len(text) > self.max_chars:
                reasons.append("too long")
            elif self._regex.search(text) is not None:
                scores[i] = 1.0
                reasons.append("match")
            else:
                reasons.append("no match")
        return RewardResult(scores, {"reason": reasons})
