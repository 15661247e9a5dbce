"""`ActivationTape`: GRPO's gradient from the rollout's own forward, with no training forward.

With one policy update per rollout (the default, and the paper's setting), the training forward over
prompt + completion computes what the rollout has just computed: the same weights on the same tokens.
The static engine keeps those activations (`weakreward.rollout.recorder.Recorder`: references, no
copies) and the keys and values in its KV cache; `ActivationTape.backward` runs the llama family's
backward pass from them, written out by hand:

- the LM head and final RMSNorm, from the gradient of the loss with respect to the sampled logits (the
  trainer gets it from autograd over `token_stats_from_logits` and `policy_loss`);
- per layer, top to bottom: down projection, SiLU-gated MLP (``∂g = ∂a·u·σ(g)(1 + g(1 − σ(g)))``,
  ``∂u = ∂a·silu(g)``), RMSNorm (``∂x = r(w∂y − x̂·mean(w∂y ⊙ x̂))``), output projection, attention
  (the softmax recomputed from the cached keys: ``∂S = P ⊙ (∂P − rowsum(P ⊙ ∂P))``, grouped-query heads
  summed onto their key/value head), RoPE (its transpose: ``∂x = ∂y·cos + roll(∂y·sin)``) and the q/k/v
  projections;
- the embedding rows of the tokens fed.

LoRA layers (peft) get their factors' gradients, ``∂B = s·∂yᵀ(x Aᵀ)`` and ``∂A = s·(∂y B)ᵀ x``, and the
pass stops under the lowest layer with a trainable parameter (`lowest_trained_layer`; the engine
records nothing below it). Each group's prompt is computed once: its keys and values collect the
gradient of every row of the group. The LM head's products run over the scored positions only;
through the layers, padding and the positions after a row's EOS are carried along (a gather would
copy more than the products over them cost): they are neither scored nor seen by a scored position,
so their gradient is exactly zero. The parameters' ``.grad`` are accumulated as
autograd would. Tests compare every gradient with autograd through the Hugging Face model
(`tests/rollout/test_tape.py`).

Supported: what `StaticDecoder` runs, in the parameters' own dtype, except qwen3's per-head query/key
norms, LoRA dropout and merged adapters (`tape_unsupported_reason`); the trainer runs its training
forward otherwise.
"""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.nn.functional as F

from weakreward.kernels.linear import packed_linear_available, product
from weakreward.rollout.recorder import Recorder
from weakreward.rollout.static_decoder import StaticDecoder, _is_lora


def tape_unsupported_reason(decoder: StaticDecoder) -> str | None:
    """Why `ActivationTape` cannot give ``decoder``'s model its gradient, or None when it can.

    Examples:
        >>> from weakreward.models import tiny_llama
        >>> tape_unsupported_reason(StaticDecoder(tiny_llama())) is None
        True
    """
    for module in decoder.base.modules():
        if not _is_lora(module):
            continue
        lora: Any = module
        if getattr(lora, "merged", False):
            return "a LoRA adapter is merged into its base weight"
        for name in _adapters(lora):
            dropout = lora.lora_dropout[name]
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                return f"LoRA dropout ({dropout.p}) makes the training forward differ from the rollout's"
            if getattr(lora.lora_B[name], "bias", None) is not None:
                return "LoRA adapters with a bias are not supported"
    if any(layer.q_norm is not None for layer in decoder.layers):
        return "per-head query/key norms (qwen3) are not supported"
    dtypes = {p.dtype for p in decoder.base.parameters()}
    if dtypes != {decoder.dtype}:
        return f"the rollout computes in {decoder.dtype}, the parameters are {sorted(map(str, dtypes))}"
    return None


def lowest_trained_layer(decoder: StaticDecoder) -> int:
    """The lowest decoder layer the backward pass must reach: 0 when the embeddings are trained, else the
    lowest layer with a parameter that requires grad (the number of layers when none has one).

    Examples:
        >>> from weakreward.models import tiny_llama
        >>> model = tiny_llama(num_layers=3)
        >>> _ = [p.requires_grad_(n.startswith("model.layers.2.")) for n, p in model.named_parameters()]
        >>> lowest_trained_layer(StaticDecoder(model))
        2
    """
    inner: Any = decoder.base.model
    if _needs(inner.embed_tokens):
        return 0
    trained = [any(p.requires_grad for p in layer.parameters()) for layer in inner.layers]
    return next((i for i, yes in enumerate(trained) if yes), len(trained))


def _input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``grad @ weight`` ``[N, in]`` for ``y = x Wᵀ``: in oneDNN for float32 on the CPU (on the project's CPU
    1.1-1.2x Intel MKL at these shapes)."""
    if grad.dtype == torch.float32 and grad.device.type == "cpu" and packed_linear_available(torch.float32):
        return product(grad, weight.t())
    return grad @ weight


def _weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``gradᵀ @ x`` ``[out, in]``: ``torch.mm`` (on the project's CPU Intel MKL ran these transposed
    products 1.15-1.3x faster than oneDNN, e.g. 1.77 ms against 2.32 ms for ``[1024, 516] × [516, 256]``)."""
    return grad.t() @ x


def _rms(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x̂ = x · r`` and ``r = 1 / sqrt(mean(x²) + eps)`` ``[N, 1]``."""
    r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * r, r


def _rms_backward(x_hat: torch.Tensor, r: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The gradient reaching ``x`` of ``y = weight ⊙ x̂``."""
    g = grad * weight
    return r * (g - x_hat * (g * x_hat).mean(-1, keepdim=True))


def _unrotate(grad: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """RoPE's backward: ``y = x·cos + roll(x, D/2)·sin`` and a roll by half the width is its own transpose."""
    return grad * cos + (grad * signed_sin).roll(grad.shape[-1] // 2, dims=-1)


def _attention_backward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, bias: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax attention's backward, the probabilities recomputed.

    A key/value head's ``G = H / KV`` query heads are stacked as ``G·Tq`` query rows, so each product is
    one batched matmul per (row, key/value head) and the sums over a head group fall out of the products.

    Args:
        q: ``[n, H, Tq, D]`` rotated queries; head ``h`` reads key/value head ``h // G``.
        k: ``[n, KV, L, D]`` rotated keys.
        v: ``[n, KV, L, D]`` values.
        grad: ``[n, H, Tq, D]`` gradient of the attention output.
        bias: ``[n, 1, Tq, L]`` additive mask (0 or -inf; every query sees at least one key).
        scale: The score scale, ``D ** -0.5``.

    Returns:
        ``∂q`` ``[n, H, Tq, D]``, ``∂k`` and ``∂v`` ``[n, KV, L, D]``.
    """
    n, h, tq, d = q.shape
    kv, length = k.shape[1], k.shape[2]
    rows = (n * kv, (h // kv) * tq, d)
    q3, g3 = q.reshape(rows), grad.reshape(rows)
    k3, v3 = k.reshape(n * kv, length, d), v.reshape(n * kv, length, d)
    scores = torch.bmm(q3, k3.transpose(1, 2)).view(n, kv, h // kv, tq, length)
    scores = scores.mul_(scale).add_(bias[:, :, None])  # [n, KV, G, Tq, L]
    softmax_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    probs = torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(q.dtype).view(n * kv, -1, length)
    grad_probs = torch.bmm(g3, v3.transpose(1, 2))
    grad_scores = grad_probs.sub_((probs * grad_probs).sum(-1, keepdim=True)).mul_(probs)
    grad_q = torch.bmm(grad_scores, k3).mul_(scale)
    grad_k = torch.bmm(grad_scores.transpose(1, 2), q3).mul_(scale)
    grad_v = torch.bmm(probs.transpose(1, 2), g3)
    return grad_q.view(n, h, tq, d), grad_k.view(n, kv, length, d), grad_v.view(n, kv, length, d)


def _accumulate(param: torch.Tensor, grad: torch.Tensor) -> None:
    """Add ``grad`` to ``param.grad`` as autograd's accumulation would (a tied weight collects both uses)."""
    if param.grad is None:
        param.grad = grad.to(param.dtype).contiguous().view(param.shape)
    else:
        param.grad.add_(grad.view(param.shape))


def _needs(module: Any, attr: str = "weight") -> bool:
    value = getattr(module, attr, None)
    return value is not None and bool(value.requires_grad)


def _adapters(module: Any) -> list[str]:
    """The LoRA adapters whose update ``module`` adds to its output (none for a plain linear layer)."""
    if not _is_lora(module) or getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
        return []
    return [name for name in module.active_adapters if name in module.lora_A]


@overload
def _linears_backward(projs: tuple[Any, ...], grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor: ...
@overload
def _linears_backward(
    projs: tuple[Any, ...], grad: torch.Tensor, x: torch.Tensor, input_grad: bool
) -> torch.Tensor | None: ...
def _linears_backward(
    projs: tuple[Any, ...], grad: torch.Tensor, x: torch.Tensor, input_grad: bool = True
) -> torch.Tensor | None:
    """The backward of linear layers (plain or peft LoRA) that read one input.

    Accumulates the gradients of their trainable weights, biases and LoRA factors
    (``y = x W₀ᵀ + s·(x Aᵀ) Bᵀ``: ``∂B = s·∂yᵀ(x Aᵀ)``, ``∂A = s·(∂y B)ᵀ x``) and returns ``∂x``.

    Args:
        projs: The layers, in the order of their outputs in ``grad``.
        grad: ``[N, Σ out]`` the gradient of their outputs, side by side.
        x: ``[N, in]`` their input.
        input_grad: Compute ``∂x`` (False returns None).

    Returns:
        ``∂x`` ``[N, in]``, or None.
    """
    sizes = [int(proj.weight.shape[0]) for proj in projs]
    parts = grad.split(sizes, dim=1) if len(projs) > 1 else (grad,)
    if all(_needs(proj) for proj in projs):  # one product for all of them
        for proj, g in zip(projs, _weight_grad(grad, x).split(sizes)):
            _accumulate(proj.weight, g)
    else:
        for proj, g in zip(projs, parts):
            if _needs(proj):
                _accumulate(proj.weight, _weight_grad(g, x))
    grad_x = None
    for proj, g in zip(projs, parts):
        if _needs(proj, "bias"):
            _accumulate(proj.bias, g.sum(0))
        for name in _adapters(proj):
            a, b, s = proj.lora_A[name].weight, proj.lora_B[name].weight, float(proj.scaling[name])
            g_b = g @ b  # [N, r]
            if b.requires_grad:
                _accumulate(b, (g.t() @ (x @ a.t())).mul_(s))
            if a.requires_grad:
                _accumulate(a, (g_b.t() @ x).mul_(s))
            if input_grad:
                delta = (g_b @ a).mul_(s)
                grad_x = delta if grad_x is None else grad_x.add_(delta)
    if not input_grad:
        return None
    weight = projs[0].weight if len(projs) == 1 else torch.cat([proj.weight for proj in projs])
    base = _input_grad(grad, weight)
    return base if grad_x is None else base.add_(grad_x)


class ActivationTape:
    """One rollout's recorded forward, and its backward into the policy's parameters.

    Built by `StaticEngine.generate` with ``record=True``; holds references to the rollout's
    activations (and so its memory) until it is dropped.

    Args:
        decoder: The decoder that ran the rollout; its KV cache holds the keys and values read here,
            so the tape is valid until the decoder's next ``prefill``.
        recorder: What the decoder recorded, with the sampled logits of each step.
        row_group: ``[B]`` the prompt row (of ``recorder.prompt_ids``) each completion row continues;
            the rows of a group are consecutive.
        first: ``[U]`` the first completion row of each prompt row.

    Examples:
        >>> import torch
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> from weakreward.rollout.static import StaticEngine
        >>> from weakreward.kernels.token_stats import token_stats_from_logits
        >>> tok = char_tokenizer(); model = tiny_llama(tok)
        >>> enc = tok(["1+1=", "1+1="], return_tensors="pt", padding=True)
        >>> gen = StaticEngine(model, tok).generate(enc.input_ids, enc.attention_mask.bool(), max_new_tokens=4,
        ...     temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0), record=True)
        >>> logits = gen.tape.logits(gen.completion_ids.shape[1]).requires_grad_()
        >>> stats = token_stats_from_logits(logits, gen.completion_ids, gen.completion_mask, 1.0)
        >>> (stats.logprobs * gen.completion_mask).sum().backward()
        >>> gen.tape.backward(logits.grad, gen.completion_ids, gen.completion_mask)
        >>> model.model.embed_tokens.weight.grad.abs().sum() > 0
        tensor(True)
    """

    def __init__(
        self, decoder: StaticDecoder, recorder: Recorder, row_group: torch.Tensor, first: torch.Tensor
    ) -> None:
        self.decoder = decoder
        self.recorder = recorder
        self.row_group = row_group
        self.first = first

    def logits(self, width: int) -> torch.Tensor:
        """``[B, width, V]``: the logits completion token ``t`` was sampled from, for ``t < width``."""
        return torch.stack(self.recorder.logits[:width], dim=1)

    @torch.no_grad()
    def backward(self, grad_logits: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> None:
        """Accumulate into each trainable parameter's ``.grad`` the gradient that ``grad_logits`` implies.

        Args:
            grad_logits: ``[B, T, V]`` the loss's gradient with respect to `logits` ``(T)``; it must be zero
                where ``completion_mask`` is False (tokens the loss does not score), which are skipped.
            completion_ids: ``[B, T]`` the sampled tokens.
            completion_mask: ``[B, T]`` bool, True at scored tokens.
        """
        dec, rec = self.decoder, self.recorder
        b, t, vocab = grad_logits.shape
        u, p = rec.prompt_ids.shape
        tq = t - 1  # decode positions that predict a token: position j was fed token j and predicts j + 1
        dt, dev = dec.dtype, grad_logits.device
        h, kv, d = dec.num_heads, dec.num_kv_heads, dec.head_dim
        grad_logits = grad_logits.to(dt)
        row_group, first = self.row_group.to(dev), self.first.to(dev)
        # Positions in rows of [N, ·]: the prompts' U·P (prompt-major), then the completions' Tq·B (step-major,
        # as the decode steps recorded them). Padding and positions after a row's EOS are kept: their
        # gradient is exactly zero, and the products over them cost less than gathering the others.
        n_p = u * p

        def flat(layer: int, name: str) -> torch.Tensor:
            """Activation ``name`` of ``layer`` at every position, ``[N, F]``."""
            prompt = rec.prefill[(layer, name)].reshape(n_p, -1)
            return torch.cat([prompt] + [s.reshape(b, -1) for s in rec.steps.get((layer, name), [])[:tq]])

        def prompt_heads(rows: torch.Tensor) -> torch.Tensor:
            return rows.view(u, p, -1, d).transpose(1, 2)  # [U·P, n·D] → [U, n, P, D]

        def step_heads(rows: torch.Tensor) -> torch.Tensor:
            return rows.view(tq, b, -1, d).permute(1, 2, 0, 3)  # [Tq·B, n·D] → [B, n, Tq, D]

        # Masks: prompt queries see earlier real prompt tokens (a padding query itself only, as in the
        # prefill); a completion query at position j sees its group's real prompt tokens and positions ≤ j.
        inf = torch.tensor(float("-inf"), dtype=dt, device=dev)
        zero = torch.zeros((), dtype=dt, device=dev)
        eye = torch.eye(p, dtype=torch.bool, device=dev)
        causal_p = torch.ones(p, p, dtype=torch.bool, device=dev).tril()
        allowed_p = causal_p[None] & (rec.prompt_mask[:, None, :] | eye[None])
        bias_p = torch.where(allowed_p, zero, inf)[:, None]  # [U, 1, P, P]
        seen_c = torch.cat(
            [
                rec.prompt_mask[row_group][:, None, :].expand(b, tq, p),
                torch.ones(tq, tq, dtype=torch.bool, device=dev).tril()[None].expand(b, tq, tq),
            ],
            dim=-1,
        )
        bias_c = torch.where(seen_c, zero, inf)[:, None]  # [B, 1, Tq, P + Tq]
        # RoPE tables at each position, [N, 1, D] (broadcast over the heads).
        pos_c = rec.prompt_positions[row_group, -1:] + 1 + torch.arange(tq, device=dev)  # [B, Tq]
        positions = torch.cat([rec.prompt_positions.reshape(-1), pos_c.t().reshape(-1)])
        cos, sin = dec.cos[positions][:, None], dec.signed_sin[positions][:, None]

        inner: Any = dec.base.model
        lm_head: Any = dec.base.lm_head
        eps, scale = dec.eps, d**-0.5

        # LM head and final norm, at the positions that predict a scored token: each prompt's last one (the
        # group's first completion token, its rows' gradients summed) and the completions' up to their
        # last scored token (a large vocabulary makes the head the costliest product: no rows in vain).
        scored = completion_mask[:, 1:].to(dev, torch.bool).t().reshape(-1).nonzero().squeeze(1)  # step-major
        rows = torch.cat([torch.arange(p - 1, n_p, p, device=dev), n_p + scored])  # [R] into the N positions
        # The scored rows of grad_logits gathered straight into the head's gradient (no [B, T, V] copy):
        # step-major position j·B + b is grad_logits[b, j + 1].
        head_grad = grad_logits.new_empty(rows.numel(), vocab)
        head_grad[:u].zero_().index_add_(0, row_group, grad_logits[:, 0])
        torch.index_select(grad_logits.reshape(b * t, vocab), 0, (scored % b) * t + scored // b + 1, out=head_grad[u:])
        x_hat, r = _rms(flat(-1, "x").index_select(0, rows), eps)
        grad_y = _linears_backward((lm_head,), head_grad, x_hat * inner.norm.weight)
        if _needs(inner.norm):
            _accumulate(inner.norm.weight, (grad_y * x_hat).sum(0))
        grad_head = _rms_backward(x_hat, r, inner.norm.weight, grad_y)
        grad_x = grad_head.new_zeros(n_p + tq * b, grad_head.shape[1]).index_copy_(0, rows, grad_head)

        # The layers, top down, to the lowest one with a trainable parameter (or all, for the embeddings).
        embed = inner.embed_tokens
        lowest = lowest_trained_layer(dec)
        if lowest < rec.first_layer:
            raise ValueError(
                f"the rollout recorded layers {rec.first_layer}+ but layer {lowest} now takes a gradient: "
                "record again after changing which parameters are trained"
            )
        n_q, n_kv = h * d, kv * d
        for i in reversed(range(lowest, len(inner.layers))):
            layer = inner.layers[i]
            attn, mlp = layer.self_attn, layer.mlp
            # MLP: x_out = x_mid + down(silu(gate) · up), (gate, up) from RMSNorm(x_mid).
            gate_up = flat(i, "gate_up")
            width = gate_up.shape[1] // 2
            gate, up = gate_up[:, :width], gate_up[:, width:]
            silu = F.silu(gate)
            grad_act = _linears_backward((mlp.down_proj,), grad_x, silu * up)
            grad_gu = torch.empty_like(gate_up)  # [∂gate | ∂up], side by side as gate_up
            torch.ops.aten.silu_backward.grad_input(grad_act * up, gate, grad_input=grad_gu[:, :width])
            torch.mul(grad_act, silu, out=grad_gu[:, width:])
            x_hat, r = _rms(flat(i, "x_mid"), eps)
            norm_w = layer.post_attention_layernorm.weight
            grad_y = _linears_backward((mlp.gate_proj, mlp.up_proj), grad_gu, x_hat * norm_w)
            if _needs(layer.post_attention_layernorm):
                _accumulate(norm_w, (grad_y * x_hat).sum(0))
            grad_mid = grad_x + _rms_backward(x_hat, r, norm_w, grad_y)

            # Output projection: x_mid = x + o(a).
            grad_a = _linears_backward((attn.o_proj,), grad_mid, flat(i, "a"))  # [N, H·D]

            # Attention: prompt queries over their prompt; completion queries over their group's prompt and
            # their own earlier positions. The prompt's keys and values collect both; RoPE is undone after.
            keys, values = dec.k_cache[i], dec.v_cache[i]  # [B, KV, L_max, D]
            grad_qkv = grad_a.new_empty(grad_a.shape[0], n_q + 2 * n_kv)  # [N, (H + 2·KV)·D], q|k|v
            gq, gk, gv = _attention_backward(
                rec.prefill[(i, "q")],
                keys[first, :, :p],
                values[first, :, :p],
                prompt_heads(grad_a[:n_p]),
                bias_p,
                scale,
            )
            if tq:
                gq_c, gk_c, gv_c = _attention_backward(
                    torch.cat(rec.steps[(i, "q")][:tq], dim=2),  # [B, H, Tq, D]
                    keys[:, :, : p + tq],
                    values[:, :, : p + tq],
                    step_heads(grad_a[n_p:]),
                    bias_c,
                    scale,
                )
                gk.index_add_(0, row_group, gk_c[:, :, :p])
                gv.index_add_(0, row_group, gv_c[:, :, :p])
                rows = grad_qkv[n_p:]
                step_heads(rows[:, :n_q]).copy_(gq_c)
                step_heads(rows[:, n_q : n_q + n_kv]).copy_(gk_c[:, :, p:])
                step_heads(rows[:, n_q + n_kv :]).copy_(gv_c[:, :, p:])
            rows = grad_qkv[:n_p]
            prompt_heads(rows[:, :n_q]).copy_(gq)
            prompt_heads(rows[:, n_q : n_q + n_kv]).copy_(gk)
            prompt_heads(rows[:, n_q + n_kv :]).copy_(gv)
            qk = grad_qkv[:, : n_q + n_kv].view(-1, h + kv, d)  # the rotated part, q and k heads together
            qk.copy_(_unrotate(qk, cos, sin))

            # q/k/v projections of RMSNorm(x).
            x_hat, r = _rms(flat(i, "x"), eps)
            norm_w = layer.input_layernorm.weight
            below = i > lowest or _needs(embed)  # does anything under this norm take a gradient?
            grad_h = _linears_backward(
                (attn.q_proj, attn.k_proj, attn.v_proj),
                grad_qkv,
                x_hat * norm_w,
                input_grad=below or _needs(layer.input_layernorm),
            )
            if grad_h is not None:
                if _needs(layer.input_layernorm):
                    _accumulate(norm_w, (grad_h * x_hat).sum(0))
                if below:
                    grad_x = grad_mid + _rms_backward(x_hat, r, norm_w, grad_h)

        if _needs(embed) and lowest == 0:
            ids = torch.cat([rec.prompt_ids.reshape(-1), completion_ids[:, :tq].to(dev).t().reshape(-1)])
            grad_embed = torch.zeros_like(embed.weight).index_add_(0, ids, grad_x)
            if getattr(embed, "padding_idx", None) is not None:
                grad_embed[embed.padding_idx] = 0  # nn.Embedding's padding row takes no gradient
            _accumulate(embed.weight, grad_embed)
