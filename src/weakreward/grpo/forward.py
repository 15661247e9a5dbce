"""The training forward: per-token statistics of sampled completions, each prompt computed once per group.

Every row of a GRPO group has the same prompt. The unshared forward runs ``[B, P + T]`` positions, of
which ``B × P`` are prompt; `completion_token_stats` runs each distinct prompt once with a KV cache,
expands the cache to the group's rows (``repeat_interleave``, which autograd differentiates: the
gradient reaching a prompt's activations is the sum over its rows, as the unshared forward's), and runs
the completions on top of it. Log-probs, entropy, self-certainty and gradients equal the unshared
forward's (`tests/grpo/test_forward.py` checks this in float64, with LoRA, full fine-tuning and mixed
prompt lengths).
"""

from __future__ import annotations

from typing import Any

import torch

from weakreward.kernels.token_stats import token_stats_from_logits
from weakreward.rollout.engine import prompt_runs
from weakreward.rollouts import TokenStats


def completion_token_stats(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float,
    *,
    share_prompts: bool | None = None,
) -> TokenStats:
    """`TokenStats` ``[B, T]`` of ``completion_ids`` under ``model`` (gradients follow the grad mode).

    Args:
        model: A Hugging Face causal LM (peft-wrapped or not) that accepts ``past_key_values``.
        prompt_ids: ``[B, P]`` left-padded prompts; equal consecutive rows form a group.
        prompt_mask: ``[B, P]`` bool, True at real prompt tokens.
        completion_ids: ``[B, T]`` sampled tokens, right-padded.
        completion_mask: ``[B, T]`` bool, True at completion tokens.
        temperature: The sampling temperature the logits are divided by.
        share_prompts: Compute each run of equal prompt rows once (False: one forward over every row,
            the reference the tests compare to). None (default) shares when that computes at most
            `SHARE_BELOW` of the unshared forward's positions (`share_saves_enough`): the shared
            forward is two passes, and on a small model the second pass's per-op cost outweighs a
            few prompt positions saved.

    Returns:
        `TokenStats` with ``logprobs``, ``entropy`` and ``self_certainty`` ``[B, T]``.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer(); model = tiny_llama(tok).double()
        >>> enc = tok(["1+1=", "1+1=", "22*3="], return_tensors="pt", padding=True)
        >>> p_ids, p_mask = enc.input_ids, enc.attention_mask.bool()
        >>> c_ids = torch.randint(4, len(tok), (3, 5)); c_mask = torch.ones(3, 5, dtype=torch.bool)
        >>> shared = completion_token_stats(model, p_ids, p_mask, c_ids, c_mask, 1.0)
        >>> plain = completion_token_stats(model, p_ids, p_mask, c_ids, c_mask, 1.0, share_prompts=False)
        >>> torch.allclose(shared.logprobs, plain.logprobs, atol=1e-10)
        True
    """
    runs = prompt_runs(prompt_ids, prompt_mask) if share_prompts is not False else None
    if (
        runs is not None
        and share_prompts is None
        and not share_saves_enough(runs, prompt_ids.shape[0], prompt_ids.shape[1], completion_ids.shape[1])
    ):
        runs = None
    if runs is None:
        logits = _unshared_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
        return token_stats_from_logits(logits, completion_ids, completion_mask, temperature)
    # The first completion token is predicted by the prompt pass, the others by the completion pass:
    # the statistics of the two parts are joined ([B, T]) rather than their logits ([B, T, V], a copy).
    parts = _shared_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask, runs)
    stats, start = [], 0
    for logits in parts:
        cols = slice(start, start + logits.shape[1])
        stats.append(token_stats_from_logits(logits, completion_ids[:, cols], completion_mask[:, cols], temperature))
        start = cols.stop
    if len(stats) == 1:
        return stats[0]
    return TokenStats(
        logprobs=torch.cat([s.logprobs for s in stats], dim=1),
        entropy=torch.cat([s.entropy for s in stats], dim=1),
        self_certainty=torch.cat([s.self_certainty for s in stats], dim=1),
        mask=completion_mask.bool(),
    )


SHARE_BELOW = 0.75
"""`completion_token_stats` shares prompts by default when the shared forward's positions are at most
this fraction of the unshared forward's. On the project's CPU, the benchmark's tiny shape (4-token
prompts, 32-token completions, 16 rows in groups of 4: 0.87 of the positions) ran its forward and
backward in 45 ms unshared against 51 ms shared; the demo's shape (56-token prompts, 16-token
completions, groups of 6: 0.34 of the positions) computes a third of the positions shared."""


def share_saves_enough(runs: torch.Tensor, rows: int, prompt_len: int, completion_len: int) -> bool:
    """Whether the shared forward computes at most `SHARE_BELOW` of the unshared forward's positions.

    The shared forward runs ``U × P`` prompt positions and ``B × (T − 1)`` completion positions (the last
    completion token predicts nothing scored); the unshared one ``B × (P + T)``.

    Args:
        runs: ``[U]`` lengths of the runs of equal prompt rows (`prompt_runs`).
        rows: ``B``.
        prompt_len: ``P``, the padded prompt width.
        completion_len: ``T``.

    Examples:
        >>> share_saves_enough(torch.tensor([6, 6, 6, 6]), 24, 56, 16)  # the demo: 584 of 1728 positions
        True
        >>> share_saves_enough(torch.tensor([4, 4, 4, 4]), 16, 4, 32)  # 512 of 576
        False
    """
    shared = runs.numel() * prompt_len + rows * max(0, completion_len - 1)
    return shared <= SHARE_BELOW * rows * (prompt_len + completion_len)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions as ``generate`` assigns them to left-padded rows: real tokens count from 0."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _unshared_logits(
    model: Any, p_ids: torch.Tensor, p_mask: torch.Tensor, c_ids: torch.Tensor, c_mask: torch.Tensor
) -> torch.Tensor:
    """``[B, T, V]`` logits predicting ``c_ids`` from one forward over prompt + completion per row."""
    # The last completion token predicts nothing scored: it is not fed.
    ids = torch.cat([p_ids, c_ids[:, :-1]], dim=1)
    attn = torch.cat([p_mask, c_mask[:, :-1]], dim=1)
    t = c_ids.shape[1]
    out = model(
        input_ids=ids, attention_mask=attn.long(), position_ids=_positions(attn), use_cache=False, logits_to_keep=t
    )
    return out.logits  # logits[:, i] predicts c_ids[:, i]


def _shared_logits(
    model: Any,
    p_ids: torch.Tensor,
    p_mask: torch.Tensor,
    c_ids: torch.Tensor,
    c_mask: torch.Tensor,
    runs: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The same logits with each of the ``U = len(runs)`` distinct prompts computed once, in two parts:
    ``[B, 1, V]`` from the prompt pass and ``[B, T - 1, V]`` from the completion pass (one part when
    ``T == 1``)."""
    first = runs.cumsum(0) - runs  # [U] the first row of each run
    prompt = model(
        input_ids=p_ids[first],
        attention_mask=p_mask[first].long(),
        position_ids=_positions(p_mask[first]),
        use_cache=True,
        logits_to_keep=1,
    )
    head = prompt.logits[:, -1:].repeat_interleave(runs, dim=0)  # [B, 1, V] predicts c_ids[:, 0]
    t = c_ids.shape[1]
    if t == 1:
        return (head,)
    # transformers 5 names the cache ``cache``; 4.x called it ``past_key_values`` (in and out).
    cache_arg = "cache" if getattr(prompt, "cache", None) is not None else "past_key_values"
    cache = getattr(prompt, cache_arg)
    for layer in cache.layers:  # [U, KV, P, D] → [B, KV, P, D]; differentiable, so grads sum per group
        layer.keys = layer.keys.repeat_interleave(runs, dim=0)
        layer.values = layer.values.repeat_interleave(runs, dim=0)
    # The last completion token predicts nothing we score: feed c_ids[:, :-1] only.
    attn = torch.cat([p_mask, c_mask[:, :-1]], dim=1)
    rest = model(
        input_ids=c_ids[:, :-1],
        attention_mask=attn.long(),
        position_ids=_positions(attn)[:, p_ids.shape[1] :],
        use_cache=True,
        logits_to_keep=t - 1,
        **{cache_arg: cache},
    )
    return head, rest.logits
