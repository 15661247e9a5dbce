"""Per-token log-prob, entropy and self-certainty from logits, without a float32 copy of all logits.

`token_stats_from_logits` is the public entry point. This module holds the plain-torch reference: it
walks the ``[N, V]`` rows in chunks, upcasting one chunk at a time, and recomputes each chunk in the
backward pass instead of saving float32 activations (an autograd ``Function``). It is the CPU path and
the oracle the fused Triton kernel is tested against.

For a row of logits ``z`` (already divided by the temperature), ``p = softmax(z)``, ``V`` the vocabulary:

- log-prob of the sampled token ``y``: ``z_y − logsumexp(z)``;
- entropy: ``H = logsumexp(z) − Σ_v p_v z_v``;
- self-certainty (Kang et al. 2025; Intuitor; arXiv 2604.18574 Eq. 1) in the units of the paper's released
  code and Intuitor: ``logsumexp(z) − mean(z)``, which is ``KL(U ‖ p) + log V`` (`SelfCertainty` subtracts
  ``log V`` when asked for the KL itself).

Gradients with respect to ``z``: ``∂ logp_y = onehot(y) − p``; ``∂H = −p ⊙ (z − lse − (−H))``
i.e. ``−p_v (log p_v + H)``; ``∂ self-certainty = p − 1/V``.
"""

from __future__ import annotations

import torch

from weakreward.rollouts import TokenStats

# Rows per chunk: 1,024 rows × 49,152 vocab × 4 bytes ≈ 0.2 GB of float32 at most per chunk off the CPU.
DEFAULT_CHUNK_ROWS = 1024
# On the CPU a chunk of about 2**20 float32 logits (4 MB) stays in cache across the passes over it: on
# 384 × 49,152 logits (the demo's batch) forward and backward took 72 ms in 32-row chunks, 245 ms in one.
CPU_CHUNK_ELEMENTS = 2**20


def default_chunk_rows(vocab: int, device: torch.device) -> int:
    """Rows per chunk: cache-sized on the CPU (`CPU_CHUNK_ELEMENTS`), `DEFAULT_CHUNK_ROWS` elsewhere.

    Args:
        vocab: ``V``, the row length.
        device: Where the logits live.

    Examples:
        >>> default_chunk_rows(49152, torch.device("cpu")), default_chunk_rows(101, torch.device("cpu"))
        (21, 1024)
    """
    if device.type != "cpu":
        return DEFAULT_CHUNK_ROWS
    return max(1, min(DEFAULT_CHUNK_ROWS, CPU_CHUNK_ELEMENTS // max(1, vocab)))


def _scaled(logits: torch.Tensor, compute: torch.dtype, temperature: float) -> torch.Tensor:
    """One chunk of logits upcast to ``compute`` and divided by the temperature (a view when neither applies)."""
    z = logits.to(compute)
    return z if temperature == 1.0 else z / temperature


class _ChunkedTokenStats(torch.autograd.Function):
    """Forward saves ``lse`` and the entropy per row, so the backward recomputes only ``p`` per chunk, and
    only the terms whose statistic carries a gradient (a statistic that is only logged costs nothing)."""

    @staticmethod
    def forward(ctx, logits, token_ids, mask, temperature, chunk_rows):
        ctx.set_materialize_grads(False)  # a statistic outside the loss gets None, not zeros
        n, _ = logits.shape
        compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
        out = torch.zeros(4, n, dtype=compute, device=logits.device)  # logprob, entropy, certainty, lse
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            z = _scaled(logits[start:stop], compute, temperature)
            lse = torch.logsumexp(z, dim=-1)
            p = (z - lse[:, None]).exp_()
            out[0, start:stop] = z.gather(-1, token_ids[start:stop, None])[:, 0] - lse
            # p·z with p = 0 where z = −inf (top-k / vocabulary masking) is NaN: nansum counts it as 0.
            # A NaN logit still gives a NaN entropy, through lse.
            out[1, start:stop] = lse - (p * z).nansum(-1)
            out[2, start:stop] = lse - z.mean(-1)  # the release's units: KL(U ‖ p) + log V
            out[3, start:stop] = lse
        ctx.save_for_backward(logits, token_ids, mask, out[3], out[1])
        ctx.temperature = temperature
        ctx.chunk_rows = chunk_rows
        out = torch.where(mask[None], out[:3], 0.0)
        return out[0], out[1], out[2]

    @staticmethod
    def backward(ctx, g_logprob, g_entropy, g_certainty):
        logits, token_ids, mask, lse, entropy = ctx.saved_tensors
        temperature, chunk_rows = ctx.temperature, ctx.chunk_rows
        n, vocab = logits.shape
        compute = lse.dtype
        gl, ge, gc = (
            None if g is None else torch.where(mask, g.to(compute), 0.0) for g in (g_logprob, g_entropy, g_certainty)
        )
        grad = torch.empty_like(logits)
        in_place = grad.dtype == compute  # build each chunk's gradient in its own rows of the output
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            rows = slice(start, stop)
            logp = _scaled(logits[rows], compute, temperature) - lse[rows, None]
            p = logp.exp()
            # d/dz of the three statistics, weighted by their incoming gradients.
            d = grad[rows].zero_() if in_place else torch.zeros_like(p)
            if gl is not None:
                d.sub_(p * gl[rows, None])
                d.scatter_add_(-1, token_ids[rows, None], gl[rows, None])
            if ge is not None:
                d.sub_(torch.where(p > 0, p * (logp + entropy[rows, None]), 0.0) * ge[rows, None])
            if gc is not None:
                d.add_((p - 1.0 / vocab) * gc[rows, None])
            if temperature != 1.0:
                d.div_(temperature)
            if not in_place:
                grad[rows] = d
        return grad, None, None, None, None


def check_token_stats_args(
    logits: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    """Validate the shared arguments of every token-statistics implementation; returns the ``[B, T]``
    mask (all True when ``mask`` is None).

    Args:
        logits: ``[B, T, V]``.
        token_ids: ``[B, T]``.
        mask: ``[B, T]`` or None.
        temperature: Must be > 0.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    return check_row_args(logits.shape[0], logits.shape[1], token_ids, mask, temperature, logits.device)


def check_row_args(
    b: int, t: int, token_ids: torch.Tensor, mask: torch.Tensor | None, temperature: float, device: torch.device
) -> torch.Tensor:
    """The checks shared by the logits and the hidden-state entry points: ``token_ids`` and ``mask`` are
    ``[B, T]``, the temperature is positive; returns the mask (all True on ``device`` when None).

    Args:
        b: Rows ``B``.
        t: Positions ``T``.
        token_ids: ``[B, T]``.
        mask: ``[B, T]`` or None.
        temperature: Must be > 0.
        device: Where a default mask is made.
    """
    if tuple(token_ids.shape) != (b, t):
        raise ValueError(f"token_ids must be [B, T] = {(b, t)}, got {tuple(token_ids.shape)}")
    if mask is None:
        mask = torch.ones(b, t, dtype=torch.bool, device=device)
    if tuple(mask.shape) != (b, t):
        raise ValueError(f"mask must be [B, T] = {(b, t)}, got {tuple(mask.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return mask


def reference_token_stats(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    chunk_rows: int | None = None,
) -> TokenStats:
    """Plain-torch token statistics; see `token_stats_from_logits` for the arguments.

    Args:
        logits: As in `token_stats_from_logits` (``[B, T, V]``, any float dtype).
        token_ids: As there (``[B, T]``).
        mask: As there (``[B, T]`` bool or None).
        temperature: As there.
        chunk_rows: Rows upcast at once (memory ≈ chunk_rows · V floats); default `default_chunk_rows`.
    """
    mask = check_token_stats_args(logits, token_ids, mask, temperature)
    b, t, v = logits.shape
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(v, logits.device)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    ids = token_ids.reshape(-1).long().clamp(0, v - 1)
    lp, ent, sc = _ChunkedTokenStats.apply(
        logits.reshape(b * t, v), ids, mask.reshape(-1).bool(), float(temperature), int(chunk_rows)
    )
    return TokenStats(
        logprobs=lp.view(b, t),
        entropy=ent.view(b, t),
        self_certainty=sc.view(b, t),
        mask=mask.bool(),
    )


def token_stats_from_logits(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> TokenStats:
    """Log-prob of the sampled tokens, entropy and self-certainty, in one pass over the vocabulary.

    Never materialises a float32 copy of all logits: rows are processed in chunks and recomputed in the
    backward pass. All three statistics carry gradients to ``logits`` when it requires them. Logits of
    ``−inf`` (masked vocabulary entries) are allowed: they contribute nothing to the entropy.

    Args:
        logits: ``[B, T, V]`` next-token logits aligned with ``token_ids`` (``logits[:, t]`` predicts
            ``token_ids[:, t]``), any float dtype.
        token_ids: ``[B, T]`` sampled tokens.
        mask: ``[B, T]`` bool, True at completion tokens; statistics are 0 elsewhere. Default: all True.
        temperature: The sampling temperature; logits are divided by it first.

    Returns:
        `TokenStats` with ``[B, T]`` float32 (float64 for float64 logits) tensors.

    Examples:
        >>> import torch
        >>> z = torch.zeros(1, 2, 4)  # uniform over 4 tokens
        >>> ts = token_stats_from_logits(z, torch.tensor([[0, 3]]))
        >>> [round(x[0, 0].item(), 4) for x in (ts.logprobs, ts.entropy, ts.self_certainty)]  # uniform: log 4
        [-1.3863, 1.3863, 1.3863]
    """
    from weakreward.kernels import dispatch

    return dispatch.token_stats(logits, token_ids, mask, temperature)
