"""`MultipleChoice`: the completion picks the reference's letter (GPQA-style ``A``-``D``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, field_validator

from weakreward.rewards.base import Verdict, Verifier, reward_dataclass
from weakreward.rewards.extraction import choice_letter

__all__ = ["MultipleChoice"]


@reward_dataclass
class MultipleChoice(Verifier):
    """1 if the letter the completion picks is the reference letter; else 0.

    The letter comes from `weakreward.rewards.extraction.choice_letter`: the whole completion when it is
    just a letter, else the last ``\\boxed{}`` (``C``, ``(C)``, ``\\text{C}``, ``C) 10 eV``), else the last
    "answer is" / "Answer:", else the last "(C)" in the text. References are letters too (``"C"``,
    ``"(C)"``), any case.

    Scores: 1 ``match``; 0 ``mismatch``, ``no answer`` (no letter of ``choices`` found), or
    ``error: reference is not one of the choices``; NaN ``no reference``.

    Args:
        choices: The valid letters, upper case, e.g. ``"ABCD"`` (GPQA) or ``"ABCDE"``.
        name: Name in composites and logs.

    Examples:
        >>> mc = MultipleChoice()
        >>> mc.score([r"so \\boxed{C}", "Answer: (B)", "no idea"], references=["C", "C", "C"]).details["reason"]
        ['match', 'mismatch', 'no answer']
    """

    choices: Annotated[str, Field(pattern=r"^[A-Z]+$")] = "ABCD"
    name: str = "multiple_choice"

    @field_validator("choices")
    @classmethod
    def _distinct(cls, value: str) -> str:
        if len(set(value)) != len(value):
            raise ValueError(f"letters must be distinct, got {value!r}")
        return value

    def extract(self, completion: str) -> str | None:
        return choice_letter(completion, self.choices)

    def compare(self, golds: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        """Whether each ``answers[i]`` picks the letter of ``golds[i]`` (both read by `choice_letter`, at most
        their first 64 characters); reasons ``match``, ``mismatch``, ``no answer`` or
        ``error: reference is not one of the choices``.

        Args: as `Verifier.compare`.
        """
        out = []
        for gold, answer in zip(golds, answers):
            g = choice_letter(str(gold).strip()[:64], self.choices)
            if g is None:
                out.append(Verdict(False, "error: reference is not one of the choices"))
                continue
            a = choice_letter(str(answer)[:64], self.choices)
            if a is None:
                out.append(Verdict(False, "no answer"))
            else:
                out.append(Verdict(a == g, "match" if a == g else "mismatch"))
        return out
