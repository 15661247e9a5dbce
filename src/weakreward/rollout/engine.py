"""The rollout seam: every engine (`StaticEngine`, `HFEngine`) takes tokenised prompts and returns a
`Generation`; the trainer never looks inside an engine. The token ids every engine agrees on (EOS, pad)
and the completion mask are defined here, once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class Generation:
    """What an engine returns for ``B`` prompts (already repeated ``group_size`` times).

    Attributes:
        prompt_ids: ``[B, P]`` the prompts as given, left-padded.
        prompt_mask: ``[B, P]`` bool, True at real prompt tokens.
        completion_ids: ``[B, T]`` sampled tokens, right-padded with the pad id after EOS.
        completion_mask: ``[B, T]`` bool, True at completion tokens up to and including the first EOS.
        completions: The decoded completion text (special tokens skipped), one per row.
        tape: The rollout's recorded forward (`weakreward.rollout.tape.ActivationTape`), when the engine
            was asked to record one; None otherwise.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    completions: list[str]
    tape: Any = None


@runtime_checkable
class RolloutEngine(Protocol):
    """Samples completions from the current policy weights.

    Examples:
        The CPU engine wraps ``model.generate``; any object with these two methods plugs in:

        >>> import torch
        >>> from weakreward.rollout.hf import HFEngine
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> engine = HFEngine(tiny_llama(tok), tok)
        >>> isinstance(engine, RolloutEngine)
        True
        >>> batch = tok(["1+1=", "2+2="], return_tensors="pt", padding=True)
        >>> out = engine.generate(batch["input_ids"], batch["attention_mask"].bool(), max_new_tokens=3,
        ...                       temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0))
        >>> out.completion_ids.shape[0], len(out.completions)
        (2, 2)
    """

    def generate(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None = None,
    ) -> Generation:
        """Sample one completion per row of ``prompt_ids`` ``[B, P]`` (left-padded).

        Args:
            prompt_ids: ``[B, P]`` int64 prompt token ids, left-padded; a GRPO group's rows repeat its prompt.
            prompt_mask: ``[B, P]`` bool (or 0/1), True at real prompt tokens.
            max_new_tokens: The most tokens sampled per row; a row stops earlier at its first EOS.
            temperature: Divides the logits before sampling (the trainer computes its log-probs with the
                same value, so they are the sampling policy's).
            top_p: Nucleus mass in ``(0, 1]``; 1 disables the filter.
            generator: The random stream the sample is drawn from, for reproducible rollouts; None uses
                torch's global RNG.

        Returns:
            The `Generation`: prompts, ``[B, T]`` completion ids and mask (``T <= max_new_tokens``), and the
            decoded text.
        """
        ...

    def sync_weights(self) -> None:
        """Called after every optimizer step: make the next `generate` use the updated weights
        (a no-op for engines that share the parameter storage)."""
        ...


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every EOS id of the model's generation config and of the tokenizer, sorted (Hugging Face's
    ``generate`` stops at any of them; a chat model's end-of-turn token is often only in the first).

    Args:
        model: A model whose ``generation_config.eos_token_id`` (an int or a list) is read, if it has one.
        tokenizer: A tokenizer whose ``eos_token_id`` is read, if it has one.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> eos_token_ids(tiny_llama(tok), tok) == [tok.eos_token_id]
        True
    """
    ids: list[int] = []
    for source in (getattr(model, "generation_config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if value is not None:
            ids.extend(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    return sorted(set(ids))


def pad_token_id(tokenizer: Any, eos_ids: Iterable[int] = ()) -> int:
    """The id written after a row's EOS: the tokenizer's pad token, else its (or the first) EOS.

    Args:
        tokenizer: A tokenizer; its ``pad_token_id``, then its ``eos_token_id``, is used where set.
        eos_ids: Fallback EOS ids (e.g. `eos_token_ids`), the first of which is used when the tokenizer
            has neither.

    Raises:
        ValueError: when neither a pad nor an EOS id is known.
    """
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if value is not None:
            return int(value)
    for value in eos_ids:
        return int(value)
    raise ValueError("the tokenizer has neither a pad_token_id nor an eos_token_id")


def completion_mask(completion_ids: torch.Tensor, eos_ids: Iterable[int]) -> torch.Tensor:
    """``[B, T]`` bool, True at every token up to and including the first EOS of each row.

    Args:
        completion_ids: ``[B, T]`` sampled token ids.
        eos_ids: The ids that end a completion; none gives an all-True mask.

    Examples:
        >>> completion_mask(torch.tensor([[5, 2, 2], [5, 6, 7]]), [2]).tolist()
        [[True, True, False], [True, True, True]]
    """
    eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for e in eos_ids:
        eos |= completion_ids == int(e)
    # Tokens after the first EOS: an EOS occurred strictly before them.
    seen_before = (torch.cumsum(eos.long(), dim=1) - eos.long()) > 0
    return ~seen_before


def prompt_runs(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor | None:
    """``[U]`` lengths of the runs of equal consecutive prompt rows (a GRPO group repeats its prompt), or
    None when no two neighbouring rows are equal (nothing to share). Rows that differ only in their
    padding ids count as equal.

    Args:
        prompt_ids: ``[B, P]`` prompt token ids.
        prompt_mask: ``[B, P]`` bool (or 0/1), True at real prompt tokens; ids under False are ignored.

    Examples:
        >>> ids = torch.tensor([[0, 5], [9, 5], [7, 5]]); mask = torch.tensor([[0, 1], [0, 1], [1, 1]]).bool()
        >>> prompt_runs(ids, mask).tolist(), prompt_runs(ids[1:], mask[1:])
        ([2, 1], None)
    """
    key = prompt_ids.masked_fill(~prompt_mask.bool(), -1)
    _, counts = torch.unique_consecutive(key, dim=0, return_counts=True)
    if counts.numel() == prompt_ids.shape[0]:  # sync: once per call (the run lengths set the shapes)
        return None
    return counts
