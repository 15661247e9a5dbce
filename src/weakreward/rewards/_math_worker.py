"""The math-verify engine behind `weakreward.MathVerifier`, run in `TimeoutPool` worker processes.

A standalone file (standard library and math-verify only; see ``timeout_pool``): it must not import
``weakreward``. math-verify runs here with its own ``signal.alarm`` timeouts switched off: the parent
enforces the per-item timeout by killing the process, which also stops C-level sympy work.

A payload is ``(text, kind)`` against the context ``gold``: ``kind`` is ``"completion"`` (math-verify
extracts the answer from the whole text) or ``"answer"`` (an already extracted answer, parsed as
``\\boxed{text}``). A result is ``(reason, answer)`` with ``reason`` one of ``"match"``, ``"mismatch"``,
``"no answer"``, ``"too_complex"``, ``"error: ..."``.

Before any symbolic work each text is screened (`too_complex`): an answer that would cost sympy a
timeout (power towers, thousands of nested brackets, factorials of huge numbers) is rejected in
microseconds instead of costing a full timeout and a worker restart.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from typing import Any

_CACHE_SIZE = 4096
_CACHE_MAX_TEXT = 2000

# The screening budget (documented in MathVerifier's docstring). MATH-500's golds stay far inside it
# (nesting ≤ 2, ≤ 32 tokens); past it, math-verify times out (2000 nested brackets, 9^(9^9)) or comes
# close (1000 nested \sqrt: 4.4 s; 2^(10^8): 1 s), while 10^6 digits take sympy well under 0.1 s.
MAX_NESTING = 32  # brackets ({, (, [) open at once
MAX_TOKENS = 2000  # tokens in the final answer (a completion's last \boxed{...}, or the whole answer)
MAX_DIGITS = 1_000_000  # decimal digits of any power or factorial of literal numbers
_MAX_FACTORIAL = 200_000  # 200000! has ~10^6 digits

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\\[a-zA-Z]+|\\.|\*\*|\S")
_OPEN = frozenset("{([")
_CLOSE = frozenset("})]")


class _TooComplex(Exception):
    pass


def too_complex(text: str, kind: str) -> str | None:
    """Why ``text`` is over the budget (``"nesting"``, ``"size"``, ``"magnitude"``), or None.

    Linear in the text; never recursive beyond `MAX_NESTING`.
    """
    tokens = _TOKEN.findall(text)
    answer = tokens
    if kind == "completion":
        last = max((i for i, t in enumerate(tokens) if t == "\\boxed"), default=-1)
        answer = tokens[last:] if last >= 0 else []
    if len(answer) > MAX_TOKENS:
        return "size"
    # The bracket tree, built without recursion: a completion may open 10^5 brackets.
    root: list[Any] = []
    stack = [root]
    for token in tokens:
        if token in _OPEN:
            if len(stack) > MAX_NESTING:
                return "nesting"
            group: list[Any] = []
            stack[-1].append(group)
            stack.append(group)
        elif token in _CLOSE:
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].append(token)
    try:
        _magnitude(root)
    except _TooComplex:
        return "magnitude"
    return None


def _magnitude(seq: list[Any]) -> float | None:
    """log10 of the value of ``seq`` when it is one power/factorial term of literal numbers, else None.
    Raises `_TooComplex` when any such term inside has more than `MAX_DIGITS` digits."""
    i, n = 0, len(seq)
    terms = 0
    value: float | None = None
    while i < n:
        value, i = _power(seq, i)
        terms += 1
    return value if terms == 1 else None


def _power(seq: list[Any], i: int) -> tuple[float | None, int]:
    """A right-associative ``operand (^|** power)?`` from ``seq[i]``; its log10 value (or None) and the
    next index."""
    base, i = _operand(seq, i)
    if i < len(seq) and seq[i] in ("^", "**"):
        exponent, i = _power(seq, i + 1)
        if base is None or exponent is None:
            return None, i
        if base <= 0.0:  # 0^e and 1^e stay small
            return 0.0, i
        if exponent > math.log10(MAX_DIGITS) + 1:
            raise _TooComplex
        digits = base * 10.0**exponent
        if digits > MAX_DIGITS:
            raise _TooComplex
        return digits, i
    return base, i


def _operand(seq: list[Any], i: int) -> tuple[float | None, int]:
    item = seq[i]
    i += 1
    if isinstance(item, list):
        value = _magnitude(item)
    elif item[0].isdigit():
        value = max(0.0, math.log10(float(item))) if float(item) > 0 else 0.0
    else:
        value = None
    while i < len(seq) and seq[i] == "!":
        i += 1
        if value is not None:
            if value > math.log10(_MAX_FACTORIAL):
                raise _TooComplex
            value = math.lgamma(10.0**value + 1) / math.log(10)
    return value, i


class Engine:
    """math-verify with a bounded parse cache: references repeat across a call and across calls, and
    short answers and completions repeat within a group."""

    def __init__(self) -> None:
        import math_verify
        import math_verify.grader
        import math_verify.parser
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        # The parent enforces timeouts; silence math-verify's one-time "timeout disabled" warning.
        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
        self.parse = math_verify.parse
        self.verify = math_verify.verify
        self.gold_config = [LatexExtractionConfig()]
        self.pred_config = [LatexExtractionConfig(), ExprExtractionConfig()]
        self.cache: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        # math-verify compiles its large extraction regexes on first use (about a second): pay that
        # while starting, not inside the first item's deadline.
        self.run("1", ("\\boxed{\\frac{1}{2}} so $x = 1$", "completion"), {})
        self.run("1", ("1", "answer"), {})
        self.cache.clear()

    def _parse(self, text: str, config: list[Any]) -> list[Any]:
        return self.parse(text, extraction_config=config, parsing_timeout=None)

    def _cached(self, key: tuple[str, str], compute: Any) -> list[Any]:
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        value = compute()
        if len(key[1]) <= _CACHE_MAX_TEXT:
            self.cache[key] = value
            if len(self.cache) > _CACHE_SIZE:
                self.cache.popitem(last=False)
        return value

    def gold(self, gold: str) -> list[Any]:
        def compute() -> list[Any]:
            parsed = self._parse("\\boxed{" + gold + "}", self.gold_config)
            return parsed or self._parse(gold, self.pred_config)

        return self._cached(("gold", gold), compute)

    def answer(self, answer: str) -> list[Any]:
        def compute() -> list[Any]:
            parsed = self._parse("\\boxed{" + answer + "}", self.pred_config)
            return parsed or self._parse(answer, self.pred_config)

        return self._cached(("answer", answer), compute)

    def run(self, gold: str, payload: tuple[str, str], options: dict[str, Any]) -> tuple[str, str | None]:
        text, kind = payload
        options = dict(options)
        if options.pop("screen", True) and too_complex(text, kind) is not None:
            return "too_complex", None
        if kind == "answer":
            pred = self.answer(text)
            shown: str | None = text
        else:
            pred = self._cached(("completion", text), lambda: self._parse(text, self.pred_config))
            shown = None
            if pred:
                shown = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
        if not pred:
            return "no answer", shown
        golds = self.gold(gold)
        if not golds:
            return "error: reference could not be parsed", shown
        if self.verify(golds, pred, timeout_seconds=None, **options):
            return "match", shown
        # math-verify misses a few literal matches (text answers such as "\text{(C)}"): an answer
        # written exactly as the reference is correct.
        if shown is not None and "".join(shown.split()) == "".join(gold.split()):
            return "match", shown
        return "mismatch", shown
