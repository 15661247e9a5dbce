"""Answer extraction: find the final answer in a model's completion.

The first half of every verifier (extract, then compare; math-verify's ``parser.py`` / ``grader.py``
split). Each function takes untrusted model output and returns the answer text or ``None``; none of them
evaluates anything, and each runs in time linear in the input (plain string scans, no backtracking
regular expressions), so a 1 MB completion costs milliseconds.

- `last_boxed`: the content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces, nested
  braces kept, ``\\boxed 5`` space form), or ``None`` when that box is unbalanced.
- `answer_is`: the text after the last "answer is" / "answer:".
- `choice_letter`: a multiple-choice letter such as GPQA's ``C`` from ``\\boxed{C}``, "(C)",
  "Answer: C".
- `last_number`: the last number written in the text (a fallback for numeric tasks).
- `extract_answer`: `last_boxed`, then `answer_is`, in the text after the last ``</think>``.
- `after_thinking`: the text after the last ``</think>`` (a reasoning model's answer region).
- `unwrap_latex`: strip ``$...$``, ``\\(...\\)``, ``\\text{...}`` and similar wrappers off an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "after_thinking",
    "answer_is",
    "choice_letter",
    "extract_answer",
    "last_boxed",
    "last_number",
    "unwrap_latex",
]

THINK_END = "</think>"
"""The tag that closes a reasoning model's thinking block."""

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_ANCHORS = ("answer is", "answer:")
# Characters that end the argument of the space form ``\boxed 5``.
_SPACE_FORM_END = frozenset(" \t\r\n$,;")
# Wrappers whose argument is the answer itself.
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf", "\\mbox", "\\textrm", "\\operatorname")
_MAX_ANSWER_IS_CHARS = 300


def _find_last_command(text: str, commands: Iterable[str]) -> tuple[int, str]:
    """Position and name of the last occurrence of any of ``commands`` not followed by a letter
    (so ``\\boxed`` does not match ``\\boxedfoo``); ``(-1, "")`` when there is none."""
    best, best_cmd = -1, ""
    for cmd in commands:
        end = len(text)
        while True:
            pos = text.rfind(cmd, 0, end)
            if pos < 0:
                break
            after = pos + len(cmd)
            if after >= len(text) or not text[after].isalpha():
                if pos > best:
                    best, best_cmd = pos, cmd
                break
            end = pos + len(cmd) - 1
    return best, best_cmd


def _balanced_group(text: str, start: int) -> int:
    """Index one past the ``}`` closing the ``{`` at ``text[start]``, or -1 if it never closes.

    A backslash escapes the next character, so ``\\{`` and ``\\}`` are literal braces (``\\{1, 2\\}``)
    and ``\\\\`` is a line break, not an escape of what follows.
    """
    depth = 0
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    Braces are matched, so nested groups are kept whole; a backslash escapes the next character.
    The space form ``\\boxed 5`` gives the token after the space. Surrounding whitespace is stripped.

    Args:
        text: A completion (untrusted).

    Returns:
        The boxed text; ``None`` when there is no box, the box is empty, or the last box never closes
        (a truncated completion: no earlier box is used instead).

    Examples:
        >>> last_boxed(r"so \\boxed{1} ... finally \\boxed{\\frac{1}{2}}.")
        '\\\\frac{1}{2}'
        >>> last_boxed(r"\\fbox{x^{2}}"), last_boxed(r"$\\boxed 7$"), last_boxed(r"\\boxed{3")
        ('x^{2}', '7', None)
    """
    pos, cmd = _find_last_command(text, _BOX_COMMANDS)
    if pos < 0:
        return None
    i = pos + len(cmd)
    n = len(text)
    if i < n and text[i] == "{":
        end = _balanced_group(text, i)
        if end < 0:
            return None
        content = text[i + 1 : end - 1].strip()
        return content or None
    # Space form: ``\boxed 5`` -> the next token.
    while i < n and text[i] in " \t":
        i += 1
    j = i
    while j < n and text[j] not in _SPACE_FORM_END:
        j += 1
    content = text[i:j].strip()
    return content or None


def _cut_sentence(rest: str) -> str:
    """The first line of ``rest``, cut at the first sentence end (a period followed by whitespace)."""
    rest = rest[:_MAX_ANSWER_IS_CHARS]
    newline = rest.find("\n")
    if newline >= 0:
        rest = rest[:newline]
    for k in range(len(rest) - 1):
        if rest[k] == "." and rest[k + 1].isspace():
            return rest[:k]
    return rest


def answer_is(text: str) -> str | None:
    """The text after the last "answer is" or "answer:" (case-insensitive), up to the end of that
    sentence or line, with ``$`` / ``\\(...\\)`` / ``**`` wrappers, a leading colon and a trailing
    period stripped.

    Args:
        text: A completion (untrusted).

    Returns:
        The answer text, or ``None`` when there is no such phrase or nothing follows it.

    Examples:
        >>> answer_is("So the answer is $42$. Let me check.")
        '42'
        >>> answer_is("**Answer:** 3.5.")
        '3.5'
    """
    lower = text.lower()
    pos, anchor = -1, ""
    for a in _ANSWER_ANCHORS:
        p = lower.rfind(a)
        if p > pos:
            pos, anchor = p, a
    if pos < 0:
        return None
    rest = _cut_sentence(text[pos + len(anchor) :])
    rest = rest.strip().lstrip(":").strip()
    rest = rest.strip("*").strip()
    rest = rest.rstrip(".").strip()
    rest = unwrap_latex(rest, text_commands=False)
    return rest or None


def unwrap_latex(answer: str, text_commands: bool = True) -> str:
    """Strip math-mode and text wrappers around an answer.

    Removes, repeatedly from the outside in: ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``, and
    (when ``text_commands``) a whole-answer ``\\text{...}``, ``\\textbf{...}``, ``\\mathrm{...}``,
    ``\\mbox{...}`` and similar. Text *inside* an answer is left alone.

    Args:
        answer: An extracted answer.
        text_commands: Also unwrap ``\\text{...}``-like commands.

    Returns:
        The unwrapped answer, stripped of surrounding whitespace.

    Examples:
        >>> unwrap_latex(r"$\\text{(C)}$")
        '(C)'
    """
    s = answer.strip()
    while True:
        before = s
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)].strip()
                break
        if text_commands and s.startswith("\\"):
            for cmd in _TEXT_COMMANDS:
                if s.startswith(cmd + "{") and _balanced_group(s, len(cmd)) == len(s):
                    s = s[len(cmd) + 1 : -1].strip()
                    break
        if s == before:
            return s


def after_thinking(text: str) -> str:
    """The text after the last ``</think>``, or the whole text when there is none.

    A thinking block holds drafts and guesses, not the answer: the paper's released thinking-format
    reward reads the answer after ``</think>``. Verifiers and majority vote use this by default.

    Examples:
        >>> after_thinking(r"<think>\\boxed{5}</think> so \\boxed{4}")
        ' so \\\\boxed{4}'
        >>> after_thinking("no tags here")
        'no tags here'
    """
    pos = text.rfind(THINK_END)
    return text if pos < 0 else text[pos + len(THINK_END) :]


def extract_answer(text: str, *, keep_thinking: bool = False) -> str | None:
    """The final answer: the last ``\\boxed{}`` if there is a complete one, else what follows the last
    "answer is"; both looked for after the last ``</think>`` (`after_thinking`).

    Args:
        text: A completion (untrusted).
        keep_thinking: Search the whole text, thinking block included.

    Returns:
        The answer text, or ``None`` when neither is found.

    Examples:
        >>> extract_answer(r"... so $x = \\boxed{3}$.")
        '3'
        >>> extract_answer("The answer is 12.")
        '12'
        >>> extract_answer("no idea") is None
        True
        >>> extract_answer(r"<think>\\boxed{5}</think> \\boxed{4}"), extract_answer(r"<think>\\boxed{5}</think>")
        ('4', None)
        >>> extract_answer(r"<think>\\boxed{5}</think>", keep_thinking=True)
        '5'
    """
    if not keep_thinking:
        text = after_thinking(text)
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    return answer_is(text)


def _letter_of(candidate: str, choices: str, allow_lower: bool) -> str | None:
    """The choice letter that ``candidate`` names ("C", "(C)", "C)", "C.", "\\text{C}", "**C**",
    "C) 10 eV"), or ``None``."""
    s = unwrap_latex(candidate).strip("*").strip()
    if not s:
        return None
    wrapped = False
    if s[0] in "([":
        s = s[1:]
        wrapped = True
    s = unwrap_latex(s)
    if not s:
        return None
    letter = s[0]
    tail = s[1:2]
    # The letter must stand alone: "C", "C)", "C.", "C:", "C ..." -- not the start of a word ("Cat").
    if tail and (tail.isalnum() or tail in "_^{\\"):
        return None
    if letter.upper() not in choices:
        return None
    if letter.islower() and not (allow_lower or wrapped):
        return None
    return letter.upper()


def _bare_letter(text: str, choices: str) -> str | None:
    """The letter when ``text`` is nothing but a letter form: "C", "(C)", "C)", "C.", "$\\text{C}$"."""
    s = unwrap_latex(text).strip("*").strip()
    if s[:1] in ("(", "[") and s[-1:] in (")", "]"):
        s = s[1:-1].strip()
    elif s[-1:] in (")", ".", ":"):
        s = s[:-1].strip()
    s = unwrap_latex(s)
    if len(s) == 1 and s.upper() in choices:
        return s.upper()
    return None


def choice_letter(text: str, choices: str = "ABCD") -> str | None:
    """The multiple-choice letter a completion picks (GPQA style), upper-cased.

    Tried in order: the whole text when it is just a letter ("C", "(c)", "C."); the last ``\\boxed{}`` ("C", "(C)", "\\text{C}", "C) 10 eV"); the last
    "answer is" / "Answer:" (a lower-case letter counts there only in parentheses, so "the answer is a
    prime" is not ``A``); the last parenthesised letter "(C)" in the text.

    Args:
        text: A completion (untrusted).
        choices: The valid letters, e.g. ``"ABCD"``.

    Returns:
        One letter of ``choices``, or ``None``.

    Examples:
        >>> choice_letter(r"... hence \\boxed{\\text{(C)}}")
        'C'
        >>> choice_letter("Answer: B"), choice_letter("I pick (d) here"), choice_letter("the answer is a prime")
        ('B', 'D', None)
    """
    choices = choices.upper()
    if len(text) <= 64:
        bare = _bare_letter(text, choices)
        if bare is not None:
            return bare
    boxed = last_boxed(text)
    if boxed is not None:
        letter = _letter_of(boxed, choices, allow_lower=True)
        if letter is not None:
            return letter
    after = answer_is(text)
    if after is not None:
        letter = _letter_of(after, choices, allow_lower=False)
        if letter is not None:
            return letter
    best, best_letter = -1, None
    for c in choices:
        for form in (f"({c})", f"({c.lower()})"):
            p = text.rfind(form)
            if p > best:
                best, best_letter = p, c
    return best_letter


# A number: sign, digits with optional thousands separators, decimals, exponent. No nested quantifiers,
# so matching is linear.
_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-−]?\.\d+")


def last_number(text: str) -> str | None:
    """The last number written in ``text`` ("-1,234.5", "3e-4"), as written; ``None`` if none.

    Examples:
        >>> last_number("5 apples and 1,250.5 pears.")
        '1,250.5'
    """
    last = None
    for m in _NUMBER.finditer(text):
        last = m
    return None if last is None else last.group(0)
