"""A static-shape forward for the llama family that reads a Hugging Face model's weights in place.

The decoder owns its KV cache (``[layers, B, kv_heads, max_len, head_dim]``), the rotary tables and the
per-row positions, all preallocated by `StaticDecoder.setup`; one decode step reads and writes only
those buffers, so it can be captured once as a CUDA graph and replayed (gpt-fast's recipe). Hugging
Face's own ``StaticCache`` is not used: on transformers 5.17 a replayed decode step with it hit a
device-side assert on its second pass.

Supported: ``model_type`` ``llama`` (also SmolLM / SmolLM2), ``qwen2`` / Qwen2.5 (q/k/v biases) and
``qwen3`` (per-head RMSNorm on queries and keys), with SiLU MLPs, full attention in every layer and a
static RoPE (default, linear, llama3 or yarn). `unsupported_reason` says why a model is not.

Weights: a parameter already in the compute dtype is referenced (its storage is shared, so in-place
optimizer updates are seen with no copy). A peft LoRA layer, or a parameter in another dtype, gets a
snapshot buffer holding ``W + Σ_adapters ΔW`` in the compute dtype, refreshed in place by
`StaticDecoder.refresh_weights` (in place, so a captured graph keeps reading the right address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3")
STATIC_ROPE_TYPES = ("default", "linear", "llama3", "yarn")


def base_causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The ``*ForCausalLM`` under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _is_lora(module: torch.nn.Module) -> bool:
    return hasattr(module, "base_layer") and hasattr(module, "lora_A")


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """Why `StaticDecoder` cannot run ``model``, or None when it can.

    Examples:
        >>> from weakreward.models import tiny_llama
        >>> unsupported_reason(tiny_llama()) is None
        True
    """
    base = base_causal_lm(model)
    config = getattr(base, "config", None)
    if config is None:
        return f"{type(model).__name__} has no config"
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type {model_type!r} is not one of {SUPPORTED_MODEL_TYPES}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act {config.hidden_act!r} is not 'silu'"
    layer_types = getattr(config, "layer_types", None) or []
    if any(kind != "full_attention" for kind in layer_types) or getattr(config, "use_sliding_window", False):
        return "sliding-window attention is not supported"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in STATIC_ROPE_TYPES:
        return f"rope_type {rope_type!r} depends on the sequence length; only {STATIC_ROPE_TYPES} are static"
    inner = getattr(base, "model", None)
    if inner is None or not all(hasattr(inner, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return f"{type(base).__name__} does not have the llama module layout"
    if _is_lora(inner.embed_tokens) or _is_lora(getattr(base, "lm_head", torch.nn.Identity())):
        return "LoRA on the embeddings or the LM head is not supported"
    for module in base.modules():
        if _is_lora(module) and any(getattr(module, "use_dora", {}).values()):
            return "DoRA adapters are not supported"
    if any(not p.is_floating_point() for p in base.parameters()):
        return "quantized (non-floating-point) weights are not supported"
    return None


class _WeightRef:
    """One weight as the decoder reads it: the parameter itself, or a snapshot refreshed in place."""

    def __init__(self, module: torch.nn.Module, attr: str, dtype: torch.dtype) -> None:
        self.module, self.attr = module, attr
        source = self._source()
        self.param_ptr = self._param().data_ptr()
        self.snapshot = _is_lora(module) or source.dtype != dtype
        self.tensor = source.detach().to(dtype).clone() if self.snapshot else source.detach()

    def _param(self) -> torch.Tensor:
        owner = self.module.base_layer if _is_lora(self.module) else self.module
        return getattr(owner, self.attr)

    def _source(self) -> torch.Tensor:
        value = self._param()
        if value is None or not _is_lora(self.module) or self.attr != "weight":
            return value
        lora = cast(Any, self.module)  # a peft LoRA layer: its adapter attributes are untyped
        if getattr(lora, "merged", False) or getattr(lora, "disable_adapters", False):
            return value
        for name in lora.active_adapters:
            if name in lora.lora_A:
                value = value + lora.get_delta_weight(name)
        return value

    def refresh(self) -> None:
        if self.snapshot:
            self.tensor.copy_(self._source().detach())

    def moved(self) -> bool:
        """True when the parameter now lives elsewhere (``p.data = ...``): references must be rebuilt."""
        return self._param().data_ptr() != self.param_ptr


@dataclass
class _Layer:
    wq: _WeightRef
    wk: _WeightRef
    wv: _WeightRef
    wo: _WeightRef
    bq: _WeightRef | None
    bk: _WeightRef | None
    bv: _WeightRef | None
    bo: _WeightRef | None
    q_norm: _WeightRef | None
    k_norm: _WeightRef | None
    ln_attn: _WeightRef
    ln_mlp: _WeightRef
    w_gate: _WeightRef
    w_up: _WeightRef
    w_down: _WeightRef
    b_gate: _WeightRef | None
    b_up: _WeightRef | None
    b_down: _WeightRef | None


def _t(ref: _WeightRef | None) -> torch.Tensor | None:
    return None if ref is None else ref.tensor


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Hugging Face's ``LlamaRMSNorm``: normalise in float32, scale in the input dtype."""
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class StaticDecoder:
    """The llama-family forward over a static KV cache, for one HF causal LM.

    Args:
        model: A supported HF causal LM, optionally wrapped by peft (see `unsupported_reason`).
        dtype: The compute dtype; default the model's parameter dtype (parameters are then shared).
    """

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype | None = None) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"StaticDecoder cannot run this model: {reason}")
        self.model = model
        self.base = base_causal_lm(model)
        config: Any = self.base.config  # an HF PretrainedConfig, reached through Module.__getattr__
        self.config = config
        embed: torch.Tensor = self._inner().embed_tokens.weight
        self.device: torch.device = embed.device
        self.dtype: torch.dtype = dtype or embed.dtype
        self.num_layers: int = config.num_hidden_layers
        self.num_heads: int = config.num_attention_heads
        self.num_kv_heads: int = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim: int = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.eps: float = config.rms_norm_eps
        self.batch_size = 0
        self.max_len = 0
        self._bind_weights()

    def _inner(self) -> Any:
        """The base model's ``model`` submodule (embeddings, layers, norm, rotary), untyped as HF leaves it."""
        return cast(Any, self.base.model)

    # -- weights ---------------------------------------------------------------------------------------

    def _bind_weights(self) -> None:
        dt = self.dtype
        inner = self._inner()

        def ref(module: torch.nn.Module, attr: str = "weight") -> _WeightRef:
            return _WeightRef(module, attr, dt)

        def bias(module: torch.nn.Module) -> _WeightRef | None:
            owner = module.base_layer if _is_lora(module) else module
            return ref(module, "bias") if getattr(owner, "bias", None) is not None else None

        self.layers: list[_Layer] = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    wq=ref(attn.q_proj),
                    wk=ref(attn.k_proj),
                    wv=ref(attn.v_proj),
                    wo=ref(attn.o_proj),
                    bq=bias(attn.q_proj),
                    bk=bias(attn.k_proj),
                    bv=bias(attn.v_proj),
                    bo=bias(attn.o_proj),
                    q_norm=ref(attn.q_norm) if hasattr(attn, "q_norm") else None,
                    k_norm=ref(attn.k_norm) if hasattr(attn, "k_norm") else None,
                    ln_attn=ref(layer.input_layernorm),
                    ln_mlp=ref(layer.post_attention_layernorm),
                    w_gate=ref(mlp.gate_proj),
                    w_up=ref(mlp.up_proj),
                    w_down=ref(mlp.down_proj),
                    b_gate=bias(mlp.gate_proj),
                    b_up=bias(mlp.up_proj),
                    b_down=bias(mlp.down_proj),
                )
            )
        self.embed = ref(inner.embed_tokens)
        self.norm = ref(inner.norm)
        lm_head = cast(torch.nn.Module, self.base.lm_head)
        self.lm_head = ref(lm_head)
        self.lm_head_bias = bias(lm_head)
        self._refs: list[_WeightRef] = [self.embed, self.norm, self.lm_head] + (
            [self.lm_head_bias] if self.lm_head_bias else []
        )
        for layer in self.layers:
            self._refs.extend(v for v in vars(layer).values() if v is not None)

    def refresh_weights(self) -> bool:
        """Refresh snapshot weights in place; returns True when references had to be rebuilt (a
        parameter moved), in which case anything captured against the old addresses is stale."""
        with torch.no_grad():
            if any(r.moved() for r in self._refs):
                self._bind_weights()
                return True
            for r in self._refs:
                r.refresh()
        return False

    @property
    def shares_all_weights(self) -> bool:
        """True when no weight is a snapshot (the engine then follows the trainer with no copies)."""
        return not any(r.snapshot for r in self._refs)

    # -- buffers ---------------------------------------------------------------------------------------

    def setup(self, batch_size: int, max_len: int) -> bool:
        """Allocate the KV cache and state buffers for ``batch_size`` rows and ``max_len`` positions.

        Idempotent: returns False (and keeps the buffers) when they already have this shape.

        Args:
            batch_size: Rows ``B`` of the cache and state buffers.
            max_len: Cache positions ``L`` (prompt + new tokens); also the length of the RoPE tables.

        Returns:
            True when the buffers were (re)allocated, which leaves anything captured against the old ones stale.
        """
        if batch_size == self.batch_size and max_len == self.max_len:
            return False
        dev, dt = self.device, self.dtype
        shape = (self.num_layers, batch_size, self.num_kv_heads, max_len, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=dt, device=dev)
        self.v_cache = torch.zeros(shape, dtype=dt, device=dev)
        self.slot_valid = torch.zeros(batch_size, max_len, dtype=torch.bool, device=dev)  # [B, L]
        self.tokens = torch.zeros(batch_size, dtype=torch.long, device=dev)  # [B] input of the next step
        self.positions = torch.zeros(batch_size, dtype=torch.long, device=dev)  # [B] RoPE position per row
        self.cache_pos = torch.zeros(1, dtype=torch.long, device=dev)  # the slot the next step writes
        self.cos, self.sin = self._rope_tables(max_len)  # [L, D] each
        self.batch_size, self.max_len = batch_size, max_len
        return True

    def _rope_tables(self, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions ``0..max_len-1`` from the model's own rotary module (same formula and
        scaling as its forward), stored in the compute dtype as Hugging Face casts them."""
        rotary = self._inner().rotary_emb
        positions = torch.arange(max_len, device=self.device, dtype=torch.float32)
        freqs = positions[:, None] * rotary.inv_freq.to(device=self.device, dtype=torch.float32)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        scale = float(getattr(rotary, "attention_scaling", 1.0))
        return (emb.cos() * scale).to(self.dtype), (emb.sin() * scale).to(self.dtype)

    # -- forward pieces --------------------------------------------------------------------------------

    def _qkv(
        self, layer: _Layer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h`` [B, T, C], ``cos``/``sin`` [B, T, D] → q [B, H, T, D], k and v [B, KV, T, D]."""
        b, t, _ = h.shape
        q = F.linear(h, layer.wq.tensor, _t(layer.bq)).view(b, t, self.num_heads, self.head_dim)
        k = F.linear(h, layer.wk.tensor, _t(layer.bk)).view(b, t, self.num_kv_heads, self.head_dim)
        v = F.linear(h, layer.wv.tensor, _t(layer.bv)).view(b, t, self.num_kv_heads, self.head_dim)
        if layer.q_norm is not None:
            assert layer.k_norm is not None, "q_norm and k_norm come together (qwen3)"
            q = _rms_norm(q, layer.q_norm.tensor, self.eps)
            k = _rms_norm(k, layer.k_norm.tensor, self.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]
        return _rotate(q, cos, sin), _rotate(k, cos, sin), v

    def _mlp(self, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
        h = _rms_norm(x, layer.ln_mlp.tensor, self.eps)
        gate = F.linear(h, layer.w_gate.tensor, _t(layer.b_gate))
        up = F.linear(h, layer.w_up.tensor, _t(layer.b_up))
        return x + F.linear(F.silu(gate) * up, layer.w_down.tensor, _t(layer.b_down))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(_rms_norm(x, self.norm.tensor, self.eps), self.lm_head.tensor, _t(self.lm_head_bias))

    # -- prefill and decode ----------------------------------------------------------------------------

    def prefill(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        all_logits: bool = False,
        repeats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the (left-padded) prompts, fill cache slots ``0..P-1`` and set the decode state.

        Args:
            input_ids: ``[B, P]`` with ``B == batch_size`` and ``P < max_len``.
            attention_mask: ``[B, P]`` bool, True at real tokens; left padding only.
            all_logits: Return ``[B, P, V]`` logits for every position instead of ``[B, V]`` for the last.
            repeats: ``[U]`` lengths of runs of identical consecutive rows (summing to ``B``): only the
                first row of each run is computed and its cache, state and logits are copied to the run.

        Returns:
            Logits in the compute dtype, one row per row of ``input_ids``.
        """
        b, p = input_ids.shape
        if b != self.batch_size or p >= self.max_len:
            raise ValueError(
                f"prefill of {tuple(input_ids.shape)} does not fit setup({self.batch_size}, {self.max_len})"
            )
        mask = attention_mask.to(device=self.device, dtype=torch.bool)
        ids = input_ids.to(self.device)
        if repeats is not None:
            repeats = repeats.to(self.device)
            first = repeats.cumsum(0) - repeats  # [U] the first row of each run
            ids, mask = ids[first], mask[first]
            b = ids.shape[0]
        # Positions count real tokens, as Hugging Face's generate does for left padding.
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, P]
        cos, sin = self.cos[positions], self.sin[positions]  # [B, P, D]
        idx = torch.arange(p, device=self.device)
        causal = idx[None, :] <= idx[:, None]  # [P, P] query i sees keys j ≤ i
        # Padding keys are hidden; a padding query sees itself only, so no row of the softmax is empty.
        allowed = causal[None] & (mask[:, None, :] | torch.eye(p, dtype=torch.bool, device=self.device)[None])
        allowed = allowed[:, None]  # [B, 1, P, P]
        group = self.num_heads // self.num_kv_heads
        x = F.embedding(ids, self.embed.tensor)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, _rms_norm(x, layer.ln_attn.tensor, self.eps), cos, sin)
            self.k_cache[i, :, :, :p] = k if repeats is None else k.repeat_interleave(repeats, dim=0)
            self.v_cache[i, :, :, :p] = v if repeats is None else v.repeat_interleave(repeats, dim=0)
            if group > 1:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [B, H, P, D]
            x = x + F.linear(a.transpose(1, 2).reshape(b, p, -1), layer.wo.tensor, _t(layer.bo))
            x = self._mlp(layer, x)
        logits = self._logits(x if all_logits else x[:, -1])
        if repeats is not None:
            mask, positions = mask.repeat_interleave(repeats, dim=0), positions.repeat_interleave(repeats, dim=0)
            logits = logits.repeat_interleave(repeats, dim=0)
        self.slot_valid.zero_()
        self.slot_valid[:, :p] = mask
        self.cache_pos.fill_(p)
        self.positions.copy_(positions[:, -1] + 1)
        return logits

    def decode_step(self) -> torch.Tensor:
        """One token per row: reads ``tokens``, ``positions``, ``cache_pos``; writes the cache slot and
        advances the state. Only static-shape buffers are touched, so this is what gets captured.

        Returns:
            ``[B, V]`` next-token logits in the compute dtype.
        """
        b = self.batch_size
        self.slot_valid.index_fill_(1, self.cache_pos, True)
        cos, sin = self.cos[self.positions][:, None], self.sin[self.positions][:, None]  # [B, 1, D]
        mask = self.slot_valid[:, None, None, :]  # [B, 1, 1, L]
        group = self.num_heads // self.num_kv_heads
        x = F.embedding(self.tokens[:, None], self.embed.tensor)  # [B, 1, C]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, _rms_norm(x, layer.ln_attn.tensor, self.eps), cos, sin)
            self.k_cache[i].index_copy_(2, self.cache_pos, k)
            self.v_cache[i].index_copy_(2, self.cache_pos, v)
            # Grouped-query attention without repeating the cache: a kv head's G query heads act as
            # G query rows (one token each, so no causal structure among them).
            qg = q.reshape(b, self.num_kv_heads, group, self.head_dim)
            a = F.scaled_dot_product_attention(qg, self.k_cache[i], self.v_cache[i], attn_mask=mask)
            x = x + F.linear(a.reshape(b, 1, -1), layer.wo.tensor, _t(layer.bo))
            x = self._mlp(layer, x)
        self.positions.add_(1)
        self.cache_pos.add_(1)
        return self._logits(x[:, 0])
