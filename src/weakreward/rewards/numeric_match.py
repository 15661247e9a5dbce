"""`NumericMatch`: the answer is a number within a tolerance of the reference.

Numbers are parsed by anchored regular expressions and ``float()``, never ``eval``: integers, decimals,
scientific notation (``1.5e3``, ``1.5 \\times 10^{3}``), fractions (``3/4``, ``\\frac{3}{4}``,
``\\dfrac34``), percentages and thousands separators (``1,234,567``, ``1{,}234``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from weakreward.rewards.base import Verdict, Verifier, reward_dataclass
from weakreward.rewards.extraction import extract_answer, last_number, unwrap_latex

__all__ = ["NumericMatch", "parse_number"]

_MAX_NUMBER_CHARS = 200
_PLAIN = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_TIMES_TEN = re.compile(
    r"(?P<m>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:\\times|\\cdot|\*|x|×)\s*10\s*\^\s*\{?\s*(?P<e>[-+]?\d+)\s*\}?"
)
_FRAC = re.compile(r"(?P<s>[-+]?)\s*\\[dt]?frac\s*(?:\{(?P<a>[^{}]*)\}|(?P<a1>\d))\s*(?:\{(?P<b>[^{}]*)\}|(?P<b1>\d))")
_SLASH = re.compile(r"(?P<a>[^/]+)/(?P<b>[^/]+)")


def _plain(s: str) -> float | None:
    s = s.strip()
    if not _PLAIN.fullmatch(s):
        return None
    value = float(s.replace(",", ""))
    return value if math.isfinite(value) else None


def _ratio(a: str, b: str) -> float | None:
    x, y = _plain(a), _plain(b)
    if x is None or y is None or y == 0:
        return None
    value = x / y
    return value if math.isfinite(value) else None


def parse_number(text: str, percent: str = "number") -> float | None:
    """The number ``text`` writes, or ``None`` if it is not exactly one number.

    Args:
        text: An extracted answer (untrusted; never evaluated).
        percent: ``"number"``: ``45%`` is 45; ``"fraction"``: ``45%`` is 0.45.

    Returns:
        A finite float, or ``None``.

    Examples:
        >>> [parse_number(s) for s in ["1,234.5", r"-\\frac{3}{4}", "3/4", r"45\\%", r"2 \\times 10^{3}", "1,2"]]
        [1234.5, -0.75, 0.75, 45.0, 2000.0, None]
    """
    s = unwrap_latex(text)
    if len(s) > _MAX_NUMBER_CHARS:
        return None
    for thin in ("\\!", "\\,", "\\;", "\\ ", "~"):
        s = s.replace(thin, "")
    s = s.replace("{,}", ",").replace("−", "-").replace("\\$", "").replace("$", "").strip()
    for degree in ("^\\circ", "^{\\circ}", "°"):
        if s.endswith(degree):
            s = s[: -len(degree)].strip()
    scale = 1.0
    for sign in ("\\%", "%"):
        if s.endswith(sign):
            s = s[: -len(sign)].strip()
            scale = 0.01 if percent == "fraction" else 1.0
            break
    s = unwrap_latex(s)
    value = _plain(s)
    if value is None and (m := _TIMES_TEN.fullmatch(s)):
        exponent = int(m["e"])
        if abs(exponent) <= 400:
            mantissa = float(m["m"])
            value = mantissa * 10.0**exponent if abs(exponent) < 308 else float(f"{m['m']}e{exponent}")
    if value is None and (m := _FRAC.fullmatch(s)):
        value = _ratio(m["a"] if m["a"] is not None else m["a1"], m["b"] if m["b"] is not None else m["b1"])
        if value is not None and m["s"] == "-":
            value = -value
    if value is None and (m := _SLASH.fullmatch(s)):
        value = _ratio(m["a"], m["b"])
    if value is None or not math.isfinite(value):
        return None
    return value * scale


@reward_dataclass
class NumericMatch(Verifier):
    """1 if the answer is a number within tolerance of the reference number; else 0.

    Gold-first tolerance, as ``numpy.isclose(answer, gold)``:
    ``|answer − gold| ≤ abs_tol + rel_tol · |gold|``.

    Extraction: the last ``\\boxed{}``, else "the answer is ..."; an answer ``x = 5`` keeps what follows
    the last ``=``; with ``last_number_fallback`` the last number in the text is used when neither is
    found (GSM8K style). Parsing: `parse_number` (no ``eval``).

    Scores: 1 ``match``; 0 ``mismatch``, ``no answer``, ``not a number`` (the answer does not parse),
    ``error: reference is not a number``; NaN ``no reference``.

    Args:
        rel_tol: Relative tolerance (of the gold), ≥ 0.
        abs_tol: Absolute tolerance, ≥ 0.
        percent: ``"number"`` (``45%`` is 45) or ``"fraction"`` (``45%`` is 0.45), on both sides.
        last_number_fallback: Use the last number in the text when no answer is marked.
        name: Name in composites and logs.

    Examples:
        >>> nm = NumericMatch(rel_tol=1e-3)
        >>> nm.score([r"\\boxed{0.3333}", "so x = 1,000", r"\\boxed{\\frac{1}{4}}"], references=["1/3", "1000", "0.3"]).scores.tolist()
        [1.0, 1.0, 0.0]
    """

    rel_tol: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1e-6
    abs_tol: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1e-9
    percent: Literal["number", "fraction"] = "number"
    last_number_fallback: bool = True
    name: str = "numeric_match"

    def parse(self, answer: str) -> float | None:
        """`parse_number` with this matcher's ``percent`` mode, after an ``x =`` prefix is dropped."""
        value = parse_number(answer, self.percent)
        if value is None and "=" in answer:
            value = parse_number(answer.rsplit("=", 1)[1], self.percent)
        return value

    def extract(self, completion: str) -> str | None:
        answer = extract_answer(completion)
        if answer is None and self.last_number_fallback:
            answer = last_number(completion)
        return answer

    def within_tolerance(self, gold: float, answer: float) -> bool:
        """The tolerance rule: ``|answer − gold| ≤ abs_tol + rel_tol · |gold|``.

        Args:
            gold: The reference number.
            answer: The answer's number.
        """
        return abs(answer - gold) <= self.abs_tol + self.rel_tol * abs(gold)

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Whether each ``answers[i]`` parses (`parse`) to a number `within_tolerance` of ``golds[i]``'s;
        reasons ``match``, ``mismatch``, ``not a number`` or ``error: reference is not a number``.

        Args: as `Verifier.compare`.
        """
        out = []
        for gold, answer in zip(golds, answers):
            g = self.parse(str(gold))
            if g is None:
                out.append(Verdict(False, "error: reference is not a number"))
                continue
            a = self.parse(str(answer))
            if a is None:
                out.append(Verdict(False, "not a number"))
            elif self.within_tolerance(g, a):
                out.append(Verdict(True, "match"))
            else:
                out.append(Verdict(False, "mismatch"))
        return out
