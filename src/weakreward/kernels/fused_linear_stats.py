"""Token statistics straight from hidden states: the LM head fused with the statistics kernel.

`fused_linear_token_stats` computes the same `TokenStats` as
``fused_token_stats(hidden @ weight.T, ...)`` without ever holding the ``[B, T, V]`` logits: rows are
processed in chunks of ``chunk_rows``; each chunk's logits ``[R, V]`` are produced by one matmul, reduced
by the fused Triton kernel, and dropped. The backward pass recomputes each chunk's logits, turns them
into ``∂/∂z`` with the backward kernel, and applies the chain rule through the head:
``∂h = (∂z) W`` and ``∂W += (∂z)ᵀ h`` (the approach of Liger's fused linear cross-entropy, with
per-token statistics instead of a scalar loss, so the logits are recomputed rather than their gradient
stored). Peak extra memory is about two ``[R, V]`` chunks plus a float32 ``[V, C]`` accumulator for
the weight gradient, instead of ``[B·T, V]`` logits and their gradient.
"""

from __future__ import annotations

import torch

from weakreward.kernels.fused_stats import stats_backward, stats_forward
from weakreward.kernels.token_stats import check_row_args
from weakreward.rollouts import TokenStats

# 2,048 rows × 49,152 vocab × 2 bytes ≈ 0.2 GB of bf16 logits per chunk.
DEFAULT_CHUNK_ROWS = 2048


class _FusedLinearTokenStats(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, token_ids, mask, temperature, chunk_rows):
        n = hidden.shape[0]
        outs = [torch.empty(n, dtype=torch.float32, device=hidden.device) for _ in range(4)]
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            z = (hidden[start:stop] @ weight.T)[None]  # [1, R, V]
            for out, part in zip(outs, stats_forward(z, token_ids[start:stop], mask[start:stop], temperature)):
                out[start:stop] = part
        logprob, entropy, certainty, lse = outs
        ctx.save_for_backward(hidden, weight, token_ids, mask, lse, entropy)
        ctx.temperature, ctx.chunk_rows = temperature, chunk_rows
        return logprob, entropy, certainty

    @staticmethod
    def backward(ctx, g_logprob, g_entropy, g_certainty):
        hidden, weight, token_ids, mask, lse, entropy = ctx.saved_tensors
        n = hidden.shape[0]
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        for start in range(0, n, ctx.chunk_rows):
            stop = min(start + ctx.chunk_rows, n)
            rows = slice(start, stop)
            h = hidden[rows]
            z = (h @ weight.T)[None]  # recomputed: [1, R, V]
            grads = tuple(None if g is None else g[rows][None] for g in (g_logprob, g_entropy, g_certainty))
            dz = stats_backward(z, token_ids[rows], mask[rows], lse[rows], entropy[rows], grads, ctx.temperature)[0]
            del z
            if need_h:
                grad_h[rows] = dz @ weight
            if need_w:
                grad_w += (dz.T @ h).float()
        return grad_h, None if grad_w is None else grad_w.to(weight.dtype), None, None, None, None


def fused_linear_token_stats(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    token_ids: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> TokenStats:
    """`fused_token_stats` of the logits ``hidden @ weight.T``, without materialising them.

    Args:
        hidden: ``[B, T, C]`` final hidden states (after the last norm) aligned with ``token_ids``.
        weight: ``[V, C]`` LM-head weight (no bias; tied embeddings work: the gradient flows to it).
        token_ids: ``[B, T]`` sampled tokens.
        mask: ``[B, T]`` bool, True at completion tokens; statistics and gradients are 0 elsewhere.
        temperature: The logits are divided by it in the kernel.
        chunk_rows: Rows of logits alive at once (memory ≈ 2 · chunk_rows · V elements).

    Returns:
        `TokenStats` with ``[B, T]`` float32 tensors; gradients flow to ``hidden`` and ``weight``.

    Example:
        On a GPU (the CPU needs Triton's interpreter):

        >>> h, w = torch.randn(2, 8, 64, device="cuda"), torch.randn(1000, 64, device="cuda")  # doctest: +SKIP
        >>> ids = torch.randint(0, 1000, (2, 8), device="cuda")  # doctest: +SKIP
        >>> fused_linear_token_stats(h, w, ids).entropy.shape  # doctest: +SKIP
        torch.Size([2, 8])
    """
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be [B, T, C], got shape {tuple(hidden.shape)}")
    b, t, c = hidden.shape
    if weight.dim() != 2 or weight.shape[1] != c:
        raise ValueError(f"weight must be [V, C] with C = {c}, got shape {tuple(weight.shape)}")
    mask = check_row_args(b, t, token_ids, mask, temperature, hidden.device)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    v = weight.shape[0]
    ids = token_ids.to(device=hidden.device, dtype=torch.int64).clamp(0, v - 1).reshape(-1).contiguous()
    row_mask = mask.to(device=hidden.device, dtype=torch.int8).reshape(-1).contiguous()
    lp, ent, sc = _FusedLinearTokenStats.apply(
        hidden.reshape(b * t, c), weight, ids, row_mask, float(temperature), int(chunk_rows)
    )
    return TokenStats(logprobs=lp.view(b, t), entropy=ent.view(b, t), self_certainty=sc.view(b, t), mask=mask.bool())
