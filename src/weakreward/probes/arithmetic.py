"""Judge-free arithmetic checking: find ``a op b = c`` claims in a worked solution and re-check them.

Model output is untrusted, so nothing here calls ``eval`` or ``sympy.sympify`` on it. Expressions are
read by a small recursive-descent parser over a validated token stream (numbers, ``+ - * / ^`` and
parentheses only) that builds exact ``sympy.Rational`` values; powers are size-capped before they are
computed, so ``9^9^9^9`` is reported as "too large to check" in microseconds instead of hanging.

What counts as a claim: a maximal run of arithmetic characters on one line that holds ``=`` (or ``≈``)
and at least one operator, split at each ``=`` into a chain ``e_0 = e_1 = … = e_n``; every adjacent
pair ``e_i = e_{i+1}`` is one claim (so ``2 + 3 = 5 = 6`` holds one true and one false claim). LaTeX is
normalised first (``\\times``, ``\\cdot``, ``\\div``, ``\\frac{a}{b}``, ``^{...}``, ``\\boxed{...}``, Unicode
``×``, ``·``, ``÷``, ``−``), thousands separators (``1,000``) are removed, and implicit products ``2(3+4)``
are read as multiplication. An expression glued to a variable (``3x + 2 = 11``, ``x^2 = 4``,
``= 5y``) or to another LaTeX command (``\\sqrt{4} = 2``) is not arithmetic and is skipped, not
flagged.

When the two sides differ but one side is written as a decimal with ``d`` places, the claim holds if
they agree to within one unit in that last place (``10/3 = 3.33`` and ``2/3 = 0.66`` hold; ``10/3 = 3.4``
does not). ``≈`` links allow a 1% relative difference as well.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import sympy

__all__ = ["ArithmeticCheck", "ArithmeticClaim", "check_arithmetic", "evaluate_arithmetic"]

MAX_TEXT_CHARS = 50_000
"""Only the first this many characters of a response are scanned (the rest is noted in the reason)."""
MAX_EXPRESSION_CHARS = 200
MAX_NUMBER_DIGITS = 60
MAX_RESULT_BITS = 20_000
MAX_CLAIMS = 1_000

_NUM = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_RUN = re.compile(r"[0-9.+\-*/^()=≈ \t]+")
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_OPERATORS = frozenset("+-*/^")
# A character that glues an expression to something non-arithmetic (a variable, a command, a unit).
_GLUE = re.compile(r"[\w@%!'\\|]")


class _Unchecked(Exception):
    """The expression is well-formed but cannot be checked safely (too large, division by zero...)."""


class _ParseError(Exception):
    """Not an arithmetic expression."""


def _tokenize(expr: str) -> list[str]:
    tokens: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in " \t":
            i += 1
        elif ch in "+-*/^()":
            tokens.append(ch)
            i += 1
        else:
            m = _NUM.match(expr, i)
            if m is None:
                raise _ParseError(f"unexpected character {ch!r}")
            if len(m.group(0)) > MAX_NUMBER_DIGITS:
                raise _Unchecked("a number has too many digits")
            tokens.append(m.group(0))
            i = m.end()
    if not tokens:
        raise _ParseError("empty expression")
    return tokens


def _bits(x: sympy.Rational) -> int:
    return int(abs(x.p)).bit_length() + int(x.q).bit_length()


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary | '(' …)* ;
    unary := ('+'|'-') unary | power ; power := atom ('^' unary)? ; atom := NUMBER | '(' expr ')'."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _ParseError("unexpected end")
        self.i += 1
        return tok

    def parse(self) -> sympy.Rational | sympy.Expr:
        value = self.expr()
        if self.peek() is not None:
            raise _ParseError(f"unexpected {self.peek()!r}")
        return value

    def expr(self) -> sympy.Expr:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "/"):
                self.take()
                rhs = self.unary()
                if tok == "*":
                    value = value * rhs
                else:
                    if rhs == 0:
                        raise _Unchecked("division by zero")
                    value = value / rhs
            elif tok == "(":  # implicit product: 2(3 + 4), (1 + 2)(3 + 4)
                value = value * self.unary()
            else:
                return value

    def unary(self) -> sympy.Expr:
        tok = self.peek()
        if tok in ("+", "-"):
            self.take()
            self.depth += 1
            if self.depth > 50:
                raise _Unchecked("too deeply nested")
            value = self.unary()
            self.depth -= 1
            return -value if tok == "-" else value
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.unary()  # right-associative: 2^3^2 = 2^(3^2)
        return _safe_pow(base, exponent)

    def atom(self) -> sympy.Expr:
        tok = self.take()
        if tok == "(":
            self.depth += 1
            if self.depth > 50:
                raise _Unchecked("too deeply nested")
            value = self.expr()
            if self.take() != ")":
                raise _ParseError("unbalanced parenthesis")
            self.depth -= 1
            return value
        if tok in "+-*/^)":
            raise _ParseError(f"unexpected {tok!r}")
        return sympy.Rational(tok)


def _safe_pow(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent`` only when the result stays small; raises `_Unchecked` otherwise."""
    if not (isinstance(base, sympy.Rational) and isinstance(exponent, sympy.Rational)):
        raise _Unchecked("power of an irrational value")
    if base == 0 and exponent < 0:
        raise _Unchecked("division by zero")
    if exponent.q == 1:
        e = abs(int(exponent.p))
        if base in (0, 1, -1) or e <= 1:
            return base**exponent
        if e > MAX_RESULT_BITS or _bits(base) * e > MAX_RESULT_BITS:
            raise _Unchecked("power too large to check")
        return base**exponent
    if base < 0:
        raise _Unchecked("fractional power of a negative number")
    if _bits(base) > 80 or abs(exponent) > 64 or exponent.q > 64:
        raise _Unchecked("fractional power too large to check")
    return sympy.Pow(base, exponent)


def evaluate_arithmetic(expr: str) -> sympy.Expr:
    """Exactly evaluate a plain arithmetic expression (numbers, ``+ - * / ^``, parentheses).

    Never evaluates code: the text is tokenised and parsed by a fixed grammar. Raises ``ValueError``
    for anything that is not such an expression or is too large to evaluate safely.

    Examples:
        >>> evaluate_arithmetic("2(3 + 4)^2 / 7")
        14
        >>> evaluate_arithmetic("0.1 + 0.2")
        3/10
    """
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        return _Parser(_tokenize(expr)).parse()
    except (_ParseError, _Unchecked) as err:
        raise ValueError(str(err)) from None


def normalize_math_text(text: str) -> str:
    """LaTeX and Unicode arithmetic turned into plain ``+ - * / ^ ( )`` text (see the module docstring)."""
    s = text.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ")
    s = s.replace("$", " ").replace("\\!", "").replace("\\,", " ").replace("\\;", " ").replace("\\ ", " ")
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])", "", s)
    s = re.sub(r"\\(?:times|cdot|ast)(?![A-Za-z])", "*", s)
    s = re.sub(r"\\div(?![A-Za-z])", "/", s)
    s = re.sub(r"\\approx(?![A-Za-z])", "≈", s)
    # A boxed answer right after "=" continues the chain ("6 * 7 = \\boxed{42}"); elsewhere it starts
    # a new statement ("6 * 7 = 42. \\boxed{42}" holds one claim, not "42 (42)").
    s = re.sub(r"([=≈]\s*)\\(?:boxed|fbox)(?![A-Za-z])", r"\1 ", s)
    s = re.sub(r"\\(?:boxed|fbox)(?![A-Za-z])", " ; ", s)
    s = re.sub(r"(?<=\d)\.(?=\s|$)", " ; ", s)  # a full stop after a number ends the statement
    for _ in range(4):
        s, count = _FRAC.subn(r"((\1)/(\2))", s)
        if not count:
            break
    s = _COMMAND.sub(" @ ", s)  # any other command blocks the expression around it
    for a, b in (
        ("{", "("),
        ("}", ")"),
        ("×", "*"),
        ("·", "*"),
        ("∙", "*"),
        ("⋅", "*"),
        ("✕", "*"),
        ("÷", "/"),
        ("−", "-"),
        ("**", "^"),
        ("==", "="),
        ("≃", "≈"),
    ):
        s = s.replace(a, b)
    return _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), s)


@dataclass
class ArithmeticClaim:
    """One ``lhs = rhs`` link of an equality chain.

    Attributes:
        lhs: The left expression as normalised text.
        rhs: The right expression.
        correct: True / False, or None when it could not be checked safely (see ``reason``).
        reason: ``"holds"``, ``"holds to the written precision"``, ``"false: lhs = <value>"``, or why it
            was not checked.
        approximate: The link was written with ``≈``.
    """

    lhs: str
    rhs: str
    correct: bool | None
    reason: str
    approximate: bool = False

    def __str__(self) -> str:
        return f"{self.lhs} {'≈' if self.approximate else '='} {self.rhs}"


@dataclass
class ArithmeticCheck:
    """All arithmetic claims of one response.

    Attributes:
        claims: Every claim found, in order.
        score: Fraction of the checked claims that hold; NaN when nothing could be checked (no claims).
        reason: A one-line summary (``"no arithmetic claims"``, ``"all 3 claims hold"``,
            ``"1 of 3 claims false: 2 + 3 = 6"``).
    """

    claims: list[ArithmeticClaim] = field(default_factory=list)
    score: float = math.nan
    reason: str = "no arithmetic claims"

    @property
    def false_claims(self) -> list[ArithmeticClaim]:
        """The claims that were checked and do not hold."""
        return [c for c in self.claims if c.correct is False]

    @property
    def checked(self) -> list[ArithmeticClaim]:
        """The claims that could be checked."""
        return [c for c in self.claims if c.correct is not None]


def _decimal_places(expr: str) -> int | None:
    """Decimal places of a side that is a single (signed) decimal literal, else None."""
    m = re.fullmatch(r"\s*[-+]?\s*(\d*)\.(\d+)\s*", expr)
    return len(m.group(2)) if m else None


def _within_written_precision(exact: sympy.Expr, written: sympy.Rational, places: int, approximate: bool) -> bool:
    """``written`` (a decimal with ``places`` places) is ``exact`` rounded or truncated to that precision."""
    unit = sympy.Rational(1, 10**places)
    diff = abs(sympy.N(exact - written, 30))
    if diff <= unit / 2:
        return True  # rounded
    if (
        diff < unit
        and abs(sympy.N(exact, 30)) >= abs(written)
        and sympy.sign(sympy.N(exact, 30)) == sympy.sign(written)
    ):
        return True  # truncated: 2/3 = 0.66
    return bool(approximate and diff <= sympy.Rational(1, 100) * abs(sympy.N(exact, 30)))


def _show(x: sympy.Expr) -> str:
    if isinstance(x, sympy.Integer) and abs(int(x.p)).bit_length() < 160:
        return str(x)
    return str(sympy.N(x, 6))


def _compare(lhs: str, rhs: str, approximate: bool) -> tuple[bool | None, str]:
    try:
        a = _Parser(_tokenize(lhs)).parse()
        b = _Parser(_tokenize(rhs)).parse()
    except _Unchecked as err:
        return None, f"not checked: {err}"
    if a == b:
        return True, "holds"
    if not (a.is_real and b.is_real):
        return None, "not checked: not a real number"
    # The side written as a decimal literal is the rounded one; with two, the coarser one.
    literals = [(p, v, o) for p, v, o in ((_decimal_places(lhs), a, b), (_decimal_places(rhs), b, a)) if p is not None]
    if literals:
        places, written, exact = min(literals, key=lambda x: x[0])
        if _within_written_precision(exact, written, places, approximate):
            return True, "holds to the written precision"
    elif approximate and abs(sympy.N(a - b, 30)) <= sympy.Rational(1, 100) * max(
        abs(sympy.N(a, 30)), abs(sympy.N(b, 30))
    ):
        return True, "holds to the written precision"
    return False, f"false: {lhs.strip()} = {_show(a)}"


def _trim_parens(part: str, leading: bool) -> str:
    """Drop unbalanced outer parentheses a run picked up from the prose around it."""
    part = part.strip()
    if leading:
        while part.startswith("(") and part.count("(") > part.count(")"):
            part = part[1:].strip()
    else:
        while part.endswith(")") and part.count(")") > part.count("("):
            part = part[:-1].strip()
    return part


def _claims_in_run(run: str, dirty_left: bool, dirty_right: bool) -> list[ArithmeticClaim]:
    pieces = re.split(r"(=|≈)", run)
    parts = pieces[0::2]
    links = pieces[1::2]
    if len(parts) < 2 or not any(ch in _OPERATORS for p in parts for ch in p.strip().lstrip("-")):
        return []
    parts = [p.strip() for p in parts]
    parts[0] = _trim_parens(parts[0], leading=True)
    parts[-1] = _trim_parens(parts[-1].rstrip("."), leading=False).rstrip(".")
    usable = [True] * len(parts)
    if dirty_left:
        usable[0] = False
    if dirty_right:
        usable[-1] = False
    out = []
    for i, link in enumerate(links):
        lhs, rhs = parts[i], parts[i + 1]
        if not (usable[i] and usable[i + 1]) or not lhs or not rhs:
            continue
        if len(lhs) > MAX_EXPRESSION_CHARS or len(rhs) > MAX_EXPRESSION_CHARS:
            out.append(ArithmeticClaim(lhs[:40], rhs[:40], None, "not checked: expression too long", link == "≈"))
            continue
        try:
            _tokenize(lhs)
            _tokenize(rhs)
        except _ParseError:
            continue
        except _Unchecked as err:
            out.append(ArithmeticClaim(lhs, rhs, None, f"not checked: {err}", link == "≈"))
            continue
        try:
            correct, reason = _compare(lhs, rhs, link == "≈")
        except _ParseError:
            continue  # not an arithmetic expression after all (e.g. "3 (")
        out.append(ArithmeticClaim(lhs, rhs, correct, reason, link == "≈"))
    return out


def check_arithmetic(text: str) -> ArithmeticCheck:
    """Find the arithmetic claims in ``text`` and re-check each exactly.

    Args:
        text: A response (untrusted; only the first ``MAX_TEXT_CHARS`` characters are scanned).

    Returns:
        An `ArithmeticCheck`: the claims, which are false, a score (fraction of checked claims that hold,
        NaN when there are none) and a reason. Never raises on any input.

    Examples:
        >>> check = check_arithmetic("First 12 \\\\times 4 = 48, then 48 + 7 = 56 = 8 * 7.")
        >>> [str(c) for c in check.false_claims], round(check.score, 3)
        (['48 + 7 = 56'], 0.667)
        >>> check_arithmetic("Let 3x + 2 = 11, so x = 3.").reason
        'no arithmetic claims'
    """
    truncated = len(text) > MAX_TEXT_CHARS
    s = normalize_math_text(text[:MAX_TEXT_CHARS])
    claims: list[ArithmeticClaim] = []
    for m in _RUN.finditer(s):
        run = m.group(0)
        if ("=" not in run and "≈" not in run) or not any(ch.isdigit() for ch in run):
            continue
        if len(run) > 4 * MAX_EXPRESSION_CHARS:
            continue
        start = m.start()
        if run.startswith(".") and (len(run) == 1 or run[1].isspace()):
            run, start = run[1:], start + 1  # a full stop ending the previous word: "i.e. 72 = 8 * 9"
        before = s[start - 1] if start > 0 else ""
        after = s[m.end()] if m.end() < len(s) else ""
        first = run.lstrip()[:1]
        last = run.rstrip()[-1:]
        dirty_left = bool(before and (_GLUE.match(before) or before == ".")) and (
            not run[0].isspace() or first in _OPERATORS or first in "=≈"
        )
        dirty_right = bool(after and _GLUE.match(after)) and (
            not run[-1].isspace() or last in _OPERATORS or last in "=≈"
        )
        claims.extend(_claims_in_run(run, dirty_left, dirty_right))
        if len(claims) >= MAX_CLAIMS:
            claims = claims[:MAX_CLAIMS]
            break
    check = ArithmeticCheck(claims=claims)
    checked = check.checked
    suffix = f" (only the first {MAX_TEXT_CHARS} characters scanned)" if truncated else ""
    if not claims:
        check.reason = "no arithmetic claims" + suffix
    elif not checked:
        check.reason = f"{len(claims)} claim(s), none checkable: {claims[0].reason}" + suffix
    else:
        wrong = check.false_claims
        check.score = 1.0 - len(wrong) / len(checked)
        if wrong:
            check.reason = f"{len(wrong)} of {len(checked)} claims false: {wrong[0]}" + suffix
        else:
            check.reason = f"all {len(checked)} claims hold" + suffix
    return check
