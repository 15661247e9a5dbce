"""Fused token statistics: one Triton pass over the vocabulary per token row.

For each row of logits ``z`` (divided by the temperature in the kernel) the forward kernel streams the
vocabulary once in blocks, keeping an online maximum ``m``, the rescaled sum ``s = Σ e^{z−m}``, the
rescaled first moment ``t = Σ e^{z−m} z`` (the online-softmax rescaling trick applied to ``Σ p z``) and
``Σ z``. At the end

- ``lse = m + log s``;
- log-prob of the sampled token ``y``: ``z_y − lse``;
- entropy ``H = lse − t / s``;
- self-certainty ``lse − Σ z / V`` (Kang et al. 2025; arXiv 2604.18574 Eq. 1), in the release's and
  Intuitor's units: ``KL(U ‖ p) + log V``.

Only four float32 numbers per row leave the kernel (the three statistics and ``lse``); no float32 copy of
the ``[N, V]`` logits is ever made. The backward kernel recomputes ``p`` block by block from the saved
``lse`` and entropy and writes ``∂/∂z`` directly in the logits' dtype:
``∂ logp_y = onehot(y) − p``, ``∂H = −p (log p + H)``, ``∂ self-certainty = p − 1/V``, each divided by the temperature.

Logits of ``−inf`` (top-k masking, padded vocabularies) contribute ``p·z = 0`` to the entropy and get a
finite gradient, as in the reference; ``KL(U ‖ p)`` is then ``+inf`` (``p`` has zeros), as in the reference.

The plain-torch reference (`weakreward.kernels.token_stats.reference_token_stats`) is the oracle the tests
compare against. CPU tensors run through Triton's interpreter (slow; meant for tests), which needs
``TRITON_INTERPRET=1`` in the environment before ``triton`` is first imported (see `interpreter_active`).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from weakreward.rollouts import TokenStats

# Vocabulary block per program step: 49,152 = 12 blocks of 4,096. Large blocks keep the loads wide.
BLOCK_V_CUDA = 4096
# Under the interpreter every block is a numpy call; a smaller block keeps odd shapes cheap to test.
BLOCK_V_INTERPRET = 2048
# Warps per row program on the GPU: 4096 lanes / (8 × 32 threads) = 16 elements per thread.
NUM_WARPS = 8


def _forward_kernel(
    logits_ptr,
    ids_ptr,
    mask_ptr,
    logprob_ptr,
    entropy_ptr,
    certainty_ptr,
    lse_ptr,
    T,
    V,
    stride_b,
    stride_t,
    inv_temp,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0)
    b = row // T
    t = row % T
    base = logits_ptr + b.to(tl.int64) * stride_b + t.to(tl.int64) * stride_t
    active = tl.load(mask_ptr + row) != 0
    # Masked rows skip the vocabulary entirely (zero iterations) and store zeros below.
    n_blocks = tl.where(active, (V + BLOCK_V - 1) // BLOCK_V, 0)
    offs = tl.arange(0, BLOCK_V)
    m = -float("inf")
    s = 0.0
    first = 0.0
    total = 0.0
    for i in range(0, n_blocks):
        cols = i * BLOCK_V + offs
        valid = cols < V
        z = tl.load(base + cols, mask=valid, other=0.0).to(tl.float32) * inv_temp
        z_max = tl.where(valid, z, -float("inf"))
        m_new = tl.maximum(m, tl.max(z_max, axis=0))
        # −inf logits (top-k masking, padded vocabularies) are allowed. Until a finite logit is seen the
        # running maximum is −inf, and exp(−inf − (−inf)) would be NaN: shift by 0 then (s is still 0).
        shift = tl.where(m_new == -float("inf"), 0.0, m_new)
        scale = tl.exp(m - shift)
        e = tl.exp(z_max - shift)
        s = s * scale + tl.sum(e, axis=0)
        # p·z is 0 where p = 0, not 0·(−inf) = NaN: zero those z before the product.
        first = first * scale + tl.sum(e * tl.where(e > 0, z, 0.0), axis=0)
        total += tl.sum(z, axis=0)
        m = m_new
    y = tl.load(ids_ptr + row)
    z_y = tl.load(base + y, mask=active, other=0.0).to(tl.float32) * inv_temp
    # Masked rows never entered the loop: give them harmless values so no log(0) is evaluated.
    s = tl.where(active, s, 1.0)
    m = tl.where(active, m, 0.0)
    lse = m + tl.log(s)
    logprob = z_y - lse
    entropy = lse - first / s
    certainty = lse - total / V
    tl.store(logprob_ptr + row, tl.where(active, logprob, 0.0))
    tl.store(entropy_ptr + row, tl.where(active, entropy, 0.0))
    tl.store(certainty_ptr + row, tl.where(active, certainty, 0.0))
    tl.store(lse_ptr + row, tl.where(active, lse, 0.0))


def _backward_kernel(
    logits_ptr,
    grad_ptr,
    ids_ptr,
    mask_ptr,
    lse_ptr,
    entropy_ptr,
    g_logprob_ptr,
    g_entropy_ptr,
    g_certainty_ptr,
    T,
    V,
    stride_b,
    stride_t,
    inv_temp,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0)
    b = row // T
    t = row % T
    base = logits_ptr + b.to(tl.int64) * stride_b + t.to(tl.int64) * stride_t
    out = grad_ptr + row.to(tl.int64) * V
    active = tl.load(mask_ptr + row) != 0
    lse = tl.load(lse_ptr + row)
    entropy = tl.load(entropy_ptr + row)
    gl = tl.where(active, tl.load(g_logprob_ptr + row), 0.0)
    ge = tl.where(active, tl.load(g_entropy_ptr + row), 0.0)
    gc = tl.where(active, tl.load(g_certainty_ptr + row), 0.0)
    y = tl.load(ids_ptr + row)
    inv_v = 1.0 / V
    offs = tl.arange(0, BLOCK_V)
    # Masked rows read nothing (limit 0) and write zeros.
    limit = tl.where(active, V, 0)
    for i in range(0, (V + BLOCK_V - 1) // BLOCK_V):
        cols = i * BLOCK_V + offs
        valid = cols < V
        z = tl.load(base + cols, mask=cols < limit, other=0.0).to(tl.float32) * inv_temp
        logp = z - lse
        p = tl.exp(logp)
        # ∂H = −p (log p + H) is 0 where p = 0 (a −inf logit), not 0·(−inf) = NaN.
        logp = tl.where(p > 0, logp, 0.0)
        d = -gl * p + tl.where(cols == y, gl, 0.0) - ge * p * (logp + entropy) + gc * (p - inv_v)
        # Masked rows: zeros, whatever the (unread) logits hold.
        d = tl.where(active, d * inv_temp, 0.0)
        tl.store(out + cols, d.to(grad_ptr.dtype.element_ty), mask=valid)


def interpreter_active() -> bool:
    """True when Triton was imported with ``TRITON_INTERPRET=1``, so kernels can run on CPU tensors.

    The interpreter must be chosen before ``triton`` is first imported (its standard library is
    decorated at import), which is why this is a process-wide setting.
    """
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(tl.standard.sum, InterpretedFunction)


@functools.cache
def _kernels(interpret: bool) -> tuple:
    """The two kernels, compiled for the GPU or wrapped for Triton's CPU interpreter."""
    if interpret:
        if not interpreter_active():
            raise RuntimeError(
                "fused_token_stats got CPU tensors, which only Triton's interpreter can run: set "
                "TRITON_INTERPRET=1 before triton is first imported, or call token_stats_from_logits, "
                "which uses the plain-torch reference on the CPU"
            )
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(_forward_kernel), InterpretedFunction(_backward_kernel)
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


def _launch_options(vocab: int, interpret: bool) -> dict:
    if interpret:  # the interpreter takes no warp count
        return {"BLOCK_V": min(BLOCK_V_INTERPRET, triton.next_power_of_2(vocab))}
    return {"BLOCK_V": min(BLOCK_V_CUDA, triton.next_power_of_2(vocab)), "num_warps": NUM_WARPS}


def stats_forward(
    logits: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the forward kernel (no autograd).

    Args:
        logits: ``[B, T, V]``, unit stride along ``V``.
        token_ids: ``[B·T]`` int64 in ``[0, V)``.
        mask: ``[B·T]`` int8.
        temperature: Positive.

    Returns:
        ``(logprob, entropy, self_certainty, lse)``, each ``[B·T]`` float32 (0 at masked rows).
    """
    b, t, v = logits.shape
    n = b * t
    interpret = not logits.is_cuda
    forward_kernel, _ = _kernels(interpret)
    outs = tuple(torch.empty(n, dtype=torch.float32, device=logits.device) for _ in range(4))
    forward_kernel[(n,)](
        logits,
        token_ids,
        mask,
        *outs,
        t,
        v,
        logits.stride(0),
        logits.stride(1),
        1.0 / temperature,
        **_launch_options(v, interpret),
    )
    logprob, entropy, certainty, lse = outs
    return logprob, entropy, certainty, lse


def stats_backward(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    mask: torch.Tensor,
    lse: torch.Tensor,
    entropy: torch.Tensor,
    grads: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None],
    temperature: float,
) -> torch.Tensor:
    """Launch the backward kernel: ``∂(Σ g·stat)/∂logits`` as a contiguous ``[B, T, V]`` tensor in the
    logits' dtype, from the forward's saved ``lse`` and ``entropy`` (``[B·T]``) and the incoming
    gradients of (logprob, entropy, self_certainty) (``[B, T]`` or None).

    Args:
        logits: ``[B, T, V]``, unit stride along ``V``.
        token_ids: ``[B·T]`` int64.
        mask: ``[B·T]`` int8.
        lse: ``[B·T]`` float32 from the forward.
        entropy: ``[B·T]`` float32 from the forward.
        grads: Incoming gradients of (logprob, entropy, self_certainty), ``[B, T]`` or None.
        temperature: Positive.
    """
    b, t, v = logits.shape
    n = b * t
    interpret = not logits.is_cuda
    _, backward_kernel = _kernels(interpret)

    def flat(g: torch.Tensor | None) -> torch.Tensor:
        if g is None:
            return torch.zeros(n, dtype=torch.float32, device=logits.device)
        return g.reshape(n).to(torch.float32).contiguous()

    grad = torch.empty(b, t, v, dtype=logits.dtype, device=logits.device)
    backward_kernel[(n,)](
        logits,
        grad,
        token_ids,
        mask,
        lse,
        entropy,
        *(flat(g) for g in grads),
        t,
        v,
        logits.stride(0),
        logits.stride(1),
        1.0 / temperature,
        **_launch_options(v, interpret),
    )
    return grad


class _FusedTokenStats(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, token_ids, mask, temperature):
        b, t, _ = logits.shape
        logprob, entropy, certainty, lse = stats_forward(logits, token_ids, mask, temperature)
        ctx.save_for_backward(logits, token_ids, mask, lse, entropy)
        ctx.temperature = temperature
        return logprob.view(b, t), entropy.view(b, t), certainty.view(b, t)

    @staticmethod
    def backward(ctx, g_logprob, g_entropy, g_certainty):
        logits, token_ids, mask, lse, entropy = ctx.saved_tensors
        grad = stats_backward(
            logits, token_ids, mask, lse, entropy, (g_logprob, g_entropy, g_certainty), ctx.temperature
        )
        return grad, None, None, None


def fused_token_stats(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> TokenStats:
    """Log-prob, entropy and self-certainty of every token in one fused pass over the vocabulary.

    Same arguments, return type and semantics as `weakreward.token_stats_from_logits` (which calls this
    on CUDA). The statistics are computed in float32 whatever the logits' dtype; ``logits`` may be a
    strided view such as ``logits[:, :-1]`` (only the vocabulary axis must be contiguous) and is never
    copied or upcast as a whole. Gradients flow to ``logits`` from all three outputs. Float64 logits
    go to the float64 reference instead. CPU tensors run under Triton's interpreter, which is slow and
    must be switched on before ``triton`` is imported (``TRITON_INTERPRET=1``); otherwise a CPU call
    raises ``RuntimeError``.

    Args:
        logits: ``[B, T, V]`` next-token logits aligned with ``token_ids``.
        token_ids: ``[B, T]`` sampled tokens (ids outside ``[0, V)`` are clamped).
        mask: ``[B, T]`` bool, True at completion tokens; statistics (and gradients) are 0 elsewhere.
        temperature: Logits are divided by it inside the kernel.

    Returns:
        `TokenStats` with ``[B, T]`` float32 tensors.

    Examples:
        On a GPU (the CPU needs the interpreter; `tests/kernels/test_fused_stats.py` runs this):

        >>> import torch
        >>> z = torch.zeros(1, 2, 4, device="cuda")  # doctest: +SKIP
        >>> ts = fused_token_stats(z, torch.tensor([[0, 3]], device="cuda"))  # doctest: +SKIP
        >>> ts.logprobs, ts.entropy  # uniform over 4 tokens: log 4 = 1.3863  # doctest: +SKIP
        (tensor([[-1.3863, -1.3863]], device='cuda:0'), tensor([[1.3863, 1.3863]], device='cuda:0'))
    """
    from weakreward.kernels.token_stats import check_token_stats_args, reference_token_stats

    mask = check_token_stats_args(logits, token_ids, mask, temperature)
    b, t, v = logits.shape
    if logits.dtype == torch.float64:
        return reference_token_stats(logits, token_ids, mask, temperature)
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    ids = token_ids.to(device=logits.device, dtype=torch.int64).clamp(0, v - 1).contiguous().view(-1)
    row_mask = mask.to(device=logits.device, dtype=torch.int8).contiguous().view(-1)
    if b * t == 0:
        zeros = logits.new_zeros(b, t, dtype=torch.float32)
        return TokenStats(logprobs=zeros, entropy=zeros.clone(), self_certainty=zeros.clone(), mask=mask.bool())
    lp, ent, sc = _FusedTokenStats.apply(logits, ids, row_mask, float(temperature))
    return TokenStats(logprobs=lp, entropy=ent, self_certainty=sc, mask=mask.bool())
