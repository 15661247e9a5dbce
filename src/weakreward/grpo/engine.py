"""The rollout seam: every engine (HF ``generate`` on the CPU, the CUDA-graph engine on CUDA) takes
tokenised prompts and returns a `Generation`; the trainer never looks inside an engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    completions: list[str]


@runtime_checkable
class RolloutEngine(Protocol):
    """Samples completions from the current policy weights.

    Examples:
        The CPU engine wraps ``model.generate``; any object with these two methods plugs in:

        >>> import torch
        >>> from weakreward.grpo.hf_engine import HFEngine
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
        """Sample one completion per row of ``prompt_ids`` ``[B, P]`` (left-padded)."""
        ...

    def sync_weights(self) -> None:
        """Called after every optimizer step: make the next `generate` use the updated weights
        (a no-op for engines that share the parameter storage)."""
        ...
