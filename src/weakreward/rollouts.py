"""The one contract's input side: `Rollouts` (what was sampled) and `TokenStats` (how it was sampled).

Everything in weakreward reads these two types: rewards score a `Rollouts`, the trainer builds one per
step, and the adapters build one from whatever TRL, verl or OpenRLHF hand them.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch

Message = Mapping[str, Any]
"""A chat message such as ``{"role": "user", "content": "1+1?"}``."""

Prompt = Union[str, Sequence[Message]]
"""A prompt is either plain text or a list of chat messages."""


def prompt_key(prompt: Prompt) -> str:
    """A stable, hashable text key for a prompt (the default group id).

    Plain text is its own key; a list of chat messages is rendered as canonical JSON so that equal
    conversations get equal keys in every process.

    Examples:
        >>> prompt_key("What is 2+2?")
        'What is 2+2?'
        >>> prompt_key([{"role": "user", "content": "hi"}])
        '[{"content": "hi", "role": "user"}]'
    """
    if isinstance(prompt, str):
        return prompt
    return json.dumps([dict(m) for m in prompt], sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class TokenStats:
    """Per-token statistics of the sampled completions, padded to ``[B, T]`` with a mask.

    The design calls these "ragged"; they are stored padded with a boolean ``mask`` so that rewards can
    reduce them in one vectorised call. ``B`` is the number of completions and ``T`` the longest
    completion in tokens. Values at masked-out positions are meaningless (usually 0).

    Attributes:
        logprobs: ``[B, T]`` log-probability of each sampled token under the sampling policy
            (temperature applied).
        entropy: ``[B, T]`` entropy of the next-token distribution, ``-Σ_v p_v log p_v``.
        self_certainty: ``[B, T]`` ``logsumexp(z) − mean(z)`` per token (= KL(U ‖ p) + log V)
            (Kang et al. 2025, "Scalable Best-of-N Selection via Self-Certainty"; arXiv 2604.18574 Eq. 1).
        mask: ``[B, T]`` bool, True where a completion token exists.

    Examples:
        >>> import torch
        >>> from weakreward import token_stats_from_logits
        >>> stats = token_stats_from_logits(torch.zeros(2, 3, 8), torch.zeros(2, 3, dtype=torch.long),
        ...                                 mask=torch.tensor([[1, 1, 1], [1, 0, 0]]).bool())
        >>> stats.masked_mean("entropy")  # uniform over 8 tokens: log 8 per token
        tensor([2.0794, 2.0794])
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor
    self_certainty: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        shape = tuple(self.mask.shape)
        if len(shape) != 2:
            raise ValueError(f"TokenStats.mask must be [B, T], got shape {shape}")
        for name in ("logprobs", "entropy", "self_certainty"):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"TokenStats.{name} has shape {got}, but mask has shape {shape}")
        if self.mask.dtype != torch.bool:
            object.__setattr__(self, "mask", self.mask.bool())

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @classmethod
    def from_ragged(
        cls,
        logprobs: Sequence[Sequence[float]],
        entropy: Sequence[Sequence[float]],
        self_certainty: Sequence[Sequence[float]],
    ) -> TokenStats:
        """Build from one list of per-token values per completion (pads with zeros).

        Args:
            logprobs: One 1-D tensor per completion.
            entropy: Same lengths, or None.
            self_certainty: Same lengths, or None.

        Examples:
            >>> ts = TokenStats.from_ragged([[-0.1, -0.2], [-0.3]], [[1.0, 2.0], [3.0]], [[0.5, 0.5], [0.1]])
            >>> ts.mask.tolist()
            [[True, True], [True, False]]
        """
        if not (len(logprobs) == len(entropy) == len(self_certainty)):
            raise ValueError(
                "TokenStats.from_ragged: logprobs, entropy and self_certainty need one entry per completion, "
                f"got {len(logprobs)}, {len(entropy)}, {len(self_certainty)}"
            )
        lengths = [len(x) for x in logprobs]
        for name, col in (("entropy", entropy), ("self_certainty", self_certainty)):
            for i, (row, n) in enumerate(zip(col, lengths)):
                if len(row) != n:
                    raise ValueError(
                        f"TokenStats.from_ragged: {name}[{i}] has {len(row)} tokens, logprobs[{i}] has {n}"
                    )
        width = max(lengths, default=0)
        mask = torch.zeros(len(lengths), width, dtype=torch.bool)
        out = [torch.zeros(len(lengths), width, dtype=torch.float32) for _ in range(3)]
        for i, n in enumerate(lengths):
            mask[i, :n] = True
            for t, col in zip(out, (logprobs, entropy, self_certainty)):
                t[i, :n] = torch.as_tensor(list(col[i]), dtype=torch.float32)
        return cls(logprobs=out[0], entropy=out[1], self_certainty=out[2], mask=mask)

    def masked_mean(self, name: str) -> torch.Tensor:
        """``[B]`` mean over each completion's tokens of ``name``; NaN for an empty completion."""
        values = getattr(self, name).float()
        mask = self.mask.float()
        count = mask.sum(-1)
        total = (values * mask).sum(-1)
        return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))

    def select(self, indices: Sequence[int]) -> TokenStats:
        """The rows ``indices``, in that order."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return TokenStats(
            logprobs=self.logprobs[idx],
            entropy=self.entropy[idx],
            self_certainty=self.self_certainty[idx],
            mask=self.mask[idx],
        )


@dataclass(frozen=True)
class Rollouts:
    """A batch of sampled completions, columnar: one entry per completion in every column.

    Attributes:
        prompts: The prompt of each completion (text or chat messages).
        completions: The sampled text.
        group_ids: Equal id = sampled from the same prompt (one GRPO group).
        references: Gold labels; ``None`` where unlabeled.
        token_stats: Per-token statistics from the trainer, or ``None``.
        extras: Any other per-completion column (``{"difficulty": [...], ...}``).

    Build one from plain lists with `Rollouts.build`; the dataclass constructor validates too.

    Examples:
        >>> r = Rollouts.build(["\\\\boxed{4}", "\\\\boxed{5}"], prompts=["2+2?", "2+2?"], references=["4", "4"])
        >>> len(r), r.group_ids
        (2, ('2+2?', '2+2?'))
    """

    prompts: Sequence[Prompt]
    completions: Sequence[str]
    group_ids: Sequence[Hashable]
    references: Sequence[str | None]
    token_stats: TokenStats | None = None
    extras: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.completions)
        for name in ("prompts", "group_ids", "references"):
            got = len(getattr(self, name))
            if got != n:
                raise ValueError(f"Rollouts.{name} has {got} entries but there are {n} completions")
        for key, column in self.extras.items():
            if len(column) != n:
                raise ValueError(f"Rollouts.extras[{key!r}] has {len(column)} entries but there are {n} completions")
        if self.token_stats is not None and len(self.token_stats) != n:
            raise ValueError(f"Rollouts.token_stats has {len(self.token_stats)} rows but there are {n} completions")
        for i, c in enumerate(self.completions):
            if not isinstance(c, str):
                raise TypeError(f"Rollouts.completions[{i}] is {type(c).__name__}, expected str")
        for i, g in enumerate(self.group_ids):
            try:
                hash(g)
            except TypeError:
                raise TypeError(f"Rollouts.group_ids[{i}] is unhashable ({type(g).__name__})") from None

    @classmethod
    def build(
        cls,
        completions: Sequence[str],
        *,
        prompts: Sequence[Prompt] | None = None,
        references: Sequence[str | None] | None = None,
        group_ids: Sequence[Hashable] | None = None,
        token_stats: TokenStats | None = None,
        **extras: Sequence[Any],
    ) -> Rollouts:
        """Build from plain lists. Missing prompts become ``""``, missing references ``None``, and
        group ids default to the prompt text (`prompt_key`).

        Args:
            completions: The completions.
            prompts: One per completion (text or messages); default ``""``.
            references: Gold labels (None where unlabeled); default all None.
            group_ids: Equal ids = one group; default: by prompt.
            token_stats: Per-token statistics, or None.
            **extras: Other columns, one entry per completion.
        """
        completions = tuple(completions)
        n = len(completions)
        prompts = tuple(prompts) if prompts is not None else ("",) * n
        references = tuple(references) if references is not None else (None,) * n
        if group_ids is None:
            group_ids = tuple(prompt_key(p) for p in prompts) if len(prompts) == n else ()
        return cls(
            prompts=prompts,
            completions=completions,
            group_ids=tuple(group_ids),
            references=references,
            token_stats=token_stats,
            extras={k: tuple(v) for k, v in extras.items()},
        )

    def __len__(self) -> int:
        return len(self.completions)

    def groups(self) -> dict[Hashable, list[int]]:
        """Indices of each group, groups in order of first appearance."""
        out: dict[Hashable, list[int]] = {}
        for i, g in enumerate(self.group_ids):
            out.setdefault(g, []).append(i)
        return out

    def select(self, indices: Sequence[int]) -> Rollouts:
        """The completions at ``indices``, in that order, every column kept aligned."""
        idx = list(indices)
        return Rollouts(
            prompts=tuple(self.prompts[i] for i in idx),
            completions=tuple(self.completions[i] for i in idx),
            group_ids=tuple(self.group_ids[i] for i in idx),
            references=tuple(self.references[i] for i in idx),
            token_stats=self.token_stats.select(idx) if self.token_stats is not None else None,
            extras={k: tuple(v[i] for i in idx) for k, v in self.extras.items()},
        )
