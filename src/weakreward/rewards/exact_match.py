"""`ExactMatch`: the extracted answer equals the reference after normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from weakreward.rewards.base import Verdict, Verifier, reward_dataclass
from weakreward.rewards.extraction import extract_answer, unwrap_latex

__all__ = ["ExactMatch"]


@reward_dataclass
class ExactMatch(Verifier):
    """1 if the completion's answer, normalised, equals the normalised reference; else 0.

    Extraction: the last ``\\boxed{}``, else "the answer is ..." (`extract_answer`); when
    ``whole_completion_fallback`` is on and neither is found, the whole completion is the answer (so a
    bare ``"4"`` matches ``"4"``). Normalisation, applied to both sides in this order: ``unwrap_latex``
    (``$...$``, ``\\(...\\)``, whole-answer ``\\text{...}``), ``strip``, ``whitespace``, ``ignore_case``.
    The comparison is symmetric, so gold-first order does not matter here.

    Scores: 1 ``match``; 0 ``mismatch`` or ``no answer``; NaN ``no reference``.

    Args:
        strip: Strip surrounding whitespace.
        ignore_case: Compare case-insensitively (Unicode casefold).
        whitespace: ``"keep"``, ``"collapse"`` (runs of whitespace become one space) or ``"remove"``.
        unwrap_latex: Strip math-mode and ``\\text{}``-style wrappers.
        whole_completion_fallback: Use the whole completion when no answer is found.
        name: Name in composites and logs.

    Examples:
        >>> ExactMatch().score([r"\\boxed{\\text{Paris}}", "The answer is paris."], references=["Paris"] * 2).scores.tolist()
        [1.0, 0.0]
        >>> ExactMatch(ignore_case=True).score(["The answer is paris."], references=["Paris"]).scores.tolist()
        [1.0]
    """

    strip: bool = True
    ignore_case: bool = False
    whitespace: Literal["keep", "collapse", "remove"] = "collapse"
    unwrap_latex: bool = True
    whole_completion_fallback: bool = True
    name: str = "exact_match"

    def normalize(self, text: str) -> str:
        """``text`` under this matcher's normalisation (what `compare` compares).

        Examples:
            >>> ExactMatch(whitespace="remove").normalize(r"$ 1, 2 $")
            '1,2'
        """
        s = unwrap_latex(text) if self.unwrap_latex else text
        if self.strip:
            s = s.strip()
        if self.whitespace == "collapse":
            s = " ".join(s.split()) if self.strip else _collapse_inner(s)
        elif self.whitespace == "remove":
            s = "".join(s.split())
        if self.ignore_case:
            s = s.casefold()
        return s

    def extract(self, completion: str) -> str | None:
        answer = extract_answer(completion)
        if answer is None and self.whole_completion_fallback and completion.strip():
            return completion
        return answer

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Whether each ``answers[i]`` equals ``golds[i]`` after `normalize` on both sides (``match`` or
        ``mismatch``); symmetric, so the order does not matter.

        Args: as `Verifier.compare`.
        """
        return [
            Verdict(True, "match") if self.normalize(str(g)) == self.normalize(str(a)) else Verdict(False, "mismatch")
            for g, a in zip(golds, answers)
        ]


def _collapse_inner(s: str) -> str:
    """Collapse whitespace runs to one space, keeping one leading/trailing space where there was any."""
    if not s:
        return s
    core = " ".join(s.split())
    lead = " " if s[0].isspace() else ""
    trail = " " if s[-1].isspace() and core else ""
    return lead + core + trail if core else " "
