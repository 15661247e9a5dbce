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

On the CPU the linear weights are also packed in oneDNN's blocked layout (`packed_linear_available`):
at 24 rows on the project's CPU, SmolLM2-135M's LM head took 8 ms that way against 23 ms with
``F.linear`` (Intel MKL), an MLP projection 0.21 ms against 0.33 ms. The layers that read one input
are packed as one product (q/k/v, and gate/up), and q and k are rotated as one tensor. Snapshots are
re-derived only when a parameter they read has changed (its version counter), or for every trainable
parameter after an optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F

from weakreward.kernels.linear import packed_linear_available
from weakreward.rollout.recorder import Recorder

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
    """One weight as the decoder reads it: the parameter itself, or a snapshot derived from it.

    A snapshot (a LoRA layer's ``W + Σ ΔW``, another dtype than the parameter's, a linear weight packed
    for oneDNN, or the weights of several layers that read the same input concatenated along their
    outputs, one product instead of several) is re-derived by `refresh` when one of the tensors it
    reads has changed in place (their version counters) or, with ``trainable=True``, whenever one of
    them requires grad.

    Args:
        modules: The layers whose ``attr`` is read; more than one are concatenated (dim 0).
        attr: ``"weight"`` or ``"bias"`` (or a norm's ``"weight"``).
        dtype: The compute dtype.
        pack: Serve the weight in oneDNN's blocked layout (CPU).
    """

    def __init__(
        self, modules: torch.nn.Module | list[torch.nn.Module], attr: str, dtype: torch.dtype, pack: bool = False
    ) -> None:
        self.modules = modules if isinstance(modules, list) else [modules]
        self.attr, self.dtype, self.pack = attr, dtype, pack
        self.param_ptrs = [p.data_ptr() for p in self._params()]
        self.snapshot = (
            pack
            or len(self.modules) > 1
            or any(_is_lora(m) for m in self.modules)
            or any(p.dtype != dtype for p in self._params())
        )
        self.stamp = self._stamp()
        self.tensor = self._derive() if self.snapshot else self._params()[0].detach()

    def _params(self) -> list[torch.Tensor]:
        return [getattr(m.base_layer if _is_lora(m) else m, self.attr) for m in self.modules]

    def _adapters(self, module: torch.nn.Module) -> list[str]:
        """The active LoRA adapters whose delta is added to ``module``'s weight (none for a plain module)."""
        if not _is_lora(module) or self.attr != "weight":
            return []
        lora = cast(Any, module)  # a peft LoRA layer: its adapter attributes are untyped
        if getattr(lora, "merged", False) or getattr(lora, "disable_adapters", False):
            return []
        return [name for name in lora.active_adapters if name in lora.lora_A]

    def _inputs(self) -> list[torch.Tensor]:
        """The tensors the weight is derived from: the parameters and each active adapter's A and B."""
        out = self._params()
        for module in self.modules:
            lora = cast(Any, module)
            for name in self._adapters(module):
                out += [lora.lora_A[name].weight, lora.lora_B[name].weight]
        return out

    def _stamp(self) -> tuple:
        """Changes when an input changes in place or the set of active adapters or their scaling does."""
        adapters = tuple(tuple(self._adapters(m)) for m in self.modules)
        scaling = tuple(
            tuple(cast(Any, m).scaling.get(name) for name in names) for m, names in zip(self.modules, adapters)
        )
        return tuple(t._version for t in self._inputs()), adapters, scaling

    def _derive(self) -> torch.Tensor:
        parts = []
        for module, param in zip(self.modules, self._params()):
            value = param
            for name in self._adapters(module):
                value = value + cast(Any, module).get_delta_weight(name)
            parts.append(value.detach().to(self.dtype))
        if len(parts) > 1:
            value = torch.cat(parts)
        elif not self.pack and parts[0].data_ptr() == self._params()[0].data_ptr():
            value = parts[0].clone()  # a snapshot never shares the parameter's storage
        else:
            value = parts[0]  # already a new tensor (W + ΔW, another dtype), or packed below into one
        return torch.ops.mkldnn._reorder_linear_weight(value) if self.pack else value

    def refresh(self, trainable: bool = False) -> None:
        """Re-derive a snapshot whose inputs changed in place (or, with ``trainable``, that any input
        requires grad: a change through ``.data`` does not move the version counter). A packed weight
        is replaced (CPU only, where nothing is captured); any other snapshot is overwritten in place."""
        if not self.snapshot:
            return
        stamp = self._stamp()
        if stamp == self.stamp and not (trainable and any(t.requires_grad for t in self._inputs())):
            return
        self.stamp = stamp
        if self.pack:
            self.tensor = self._derive()
        else:
            self.tensor.copy_(self._derive())

    def moved(self) -> bool:
        """True when a parameter now lives elsewhere (``p.data = ...``): references must be rebuilt."""
        return [p.data_ptr() for p in self._params()] != self.param_ptrs


class _Proj:
    """The linear layers that read one input (q/k/v, or gate/up): one product over their concatenated
    weights when the weights are snapshots anyway (packed), else one product each.

    Args:
        modules: The layers, in output order.
        dtype: The compute dtype.
        pack: Pack (and so fuse) the weights for oneDNN.
    """

    def __init__(self, modules: list[torch.nn.Module], dtype: torch.dtype, pack: bool) -> None:
        owners = [cast(Any, m).base_layer if _is_lora(m) else cast(Any, m) for m in modules]
        self.sizes = [int(owner.weight.shape[0]) for owner in owners]
        has_bias = [getattr(owner, "bias", None) is not None for owner in owners]
        if pack and len(set(has_bias)) == 1:  # one product; biases fused too when every layer has one
            groups, group_bias = [modules], has_bias[:1]
        else:
            groups, group_bias = [[m] for m in modules], has_bias
        self.weights = [_WeightRef(g, "weight", dtype, pack=pack) for g in groups]
        self.biases = [_WeightRef(g, "bias", dtype) if b else None for g, b in zip(groups, group_bias)]

    @property
    def refs(self) -> list[_WeightRef]:
        return self.weights + [b for b in self.biases if b is not None]

    @property
    def fused(self) -> bool:
        """True when the layers are one product (their weights concatenated)."""
        return len(self.weights) < len(self.sizes)

    def weights_product(self, x: torch.Tensor) -> torch.Tensor:
        """The fused product's output, the layers' outputs side by side (``fused`` only)."""
        assert self.fused, "only a fused projection has one output"
        return _linear(x, self.weights[0], self.biases[0])

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One output per layer."""
        if self.fused:
            return list(self.weights_product(x).split(self.sizes, dim=-1))
        return [_linear(x, w, b) for w, b in zip(self.weights, self.biases)]


@dataclass
class _Layer:
    qkv: _Proj
    wo: _WeightRef
    bo: _WeightRef | None
    q_norm: _WeightRef | None
    k_norm: _WeightRef | None
    ln_attn: _WeightRef
    ln_mlp: _WeightRef
    gate_up: _Proj
    w_down: _WeightRef
    b_down: _WeightRef | None

    @property
    def refs(self) -> list[_WeightRef]:
        single = [self.wo, self.bo, self.q_norm, self.k_norm, self.ln_attn, self.ln_mlp, self.w_down, self.b_down]
        return self.qkv.refs + self.gate_up.refs + [r for r in single if r is not None]


def _t(ref: _WeightRef | None) -> torch.Tensor | None:
    return None if ref is None else ref.tensor


def _linear(
    x: torch.Tensor, weight: _WeightRef, bias: _WeightRef | None, residual: torch.Tensor | None = None
) -> torch.Tensor:
    """``x @ W.T + b`` (``+ residual``), with oneDNN's packed product where the weight is packed (the
    residual then added by the product itself, the same sum one op sooner)."""
    if weight.pack:
        if residual is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight.tensor, _t(bias), "add")
        return torch.ops.mkldnn._linear_pointwise(x, weight.tensor, _t(bias), "none", [], "")
    out = F.linear(x, weight.tensor, _t(bias))
    return out if residual is None else residual + out


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Hugging Face's ``LlamaRMSNorm``: normalise in float32, scale in the input dtype (one fused
    normalisation instead of five element-wise ops; in float32 the scale is fused too, the same
    products)."""
    if x.dtype == weight.dtype == torch.float32:
        return F.rms_norm(x, x.shape[-1:], weight, eps)
    return weight * F.rms_norm(x.float(), x.shape[-1:], eps=eps).to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """RoPE: ``x·cos + rotate_half(x)·sin`` with ``rotate_half(x) = (−x₂, x₁)`` written as a roll of the
    halves times ``signed_sin = (−sin₁, sin₂)``, the same products in fewer ops."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


class StaticDecoder:
    """The llama-family forward over a static KV cache, for one HF causal LM.

    Args:
        model: A supported HF causal LM, optionally wrapped by peft (see `unsupported_reason`).
        dtype: The compute dtype; default the model's parameter dtype (parameters are then shared).
        pack_weights: Serve every linear weight (attention, MLP, LM head) packed in oneDNN's blocked
            layout, one extra copy of those weights. Default: on the CPU, in float32 or bfloat16, where
            `packed_linear_available` (small-batch products run 1.5-3× faster than ``F.linear`` there,
            see above). A packed weight is re-packed by `refresh_weights` when its parameter changed.
    """

    def __init__(
        self, model: torch.nn.Module, dtype: torch.dtype | None = None, pack_weights: bool | None = None
    ) -> None:
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
        if pack_weights is None:
            pack_weights = self.device.type == "cpu" and packed_linear_available(self.dtype)
        if pack_weights and (self.device.type != "cpu" or not packed_linear_available(self.dtype)):
            raise ValueError(f"pack_weights needs oneDNN's packed linear on the CPU in {self.dtype}")
        self.pack_weights: bool = pack_weights
        self.num_layers: int = config.num_hidden_layers
        self.num_heads: int = config.num_attention_heads
        self.num_kv_heads: int = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim: int = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.eps: float = config.rms_norm_eps
        self.batch_size = 0
        self.max_len = 0
        self.recorder: Recorder | None = None
        """When set, `prefill` and `decode_step` hand it the activations the backward pass reads
        (`weakreward.rollout.tape`); None (the default) records nothing."""
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

        def linear(module: torch.nn.Module) -> _WeightRef:
            return _WeightRef(module, "weight", dt, pack=self.pack_weights)

        def bias(module: torch.nn.Module) -> _WeightRef | None:
            owner = module.base_layer if _is_lora(module) else module
            return ref(module, "bias") if getattr(owner, "bias", None) is not None else None

        self.layers: list[_Layer] = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    qkv=_Proj([attn.q_proj, attn.k_proj, attn.v_proj], dt, self.pack_weights),
                    wo=linear(attn.o_proj),
                    bo=bias(attn.o_proj),
                    q_norm=ref(attn.q_norm) if hasattr(attn, "q_norm") else None,
                    k_norm=ref(attn.k_norm) if hasattr(attn, "k_norm") else None,
                    ln_attn=ref(layer.input_layernorm),
                    ln_mlp=ref(layer.post_attention_layernorm),
                    gate_up=_Proj([mlp.gate_proj, mlp.up_proj], dt, self.pack_weights),
                    w_down=linear(mlp.down_proj),
                    b_down=bias(mlp.down_proj),
                )
            )
        self.embed = ref(inner.embed_tokens)
        self.norm = ref(inner.norm)
        lm_head = cast(torch.nn.Module, self.base.lm_head)
        self.lm_head = linear(lm_head)
        self.lm_head_bias = bias(lm_head)
        self._refs: list[_WeightRef] = [self.embed, self.norm, self.lm_head] + (
            [self.lm_head_bias] if self.lm_head_bias else []
        )
        for layer in self.layers:
            self._refs.extend(layer.refs)

    def refresh_weights(self, trainable: bool = False) -> bool:
        """Re-derive the snapshot weights whose parameters changed in place (their version counters).

        Args:
            trainable: Also re-derive every snapshot of a parameter that requires grad, whatever its
                version counter says (after an optimizer step, or a change through ``.data``).

        Returns:
            True when references had to be rebuilt (a parameter moved, ``p.data = ...``), in which case
            anything captured against the old addresses is stale.
        """
        with torch.no_grad():
            if any(r.moved() for r in self._refs):
                self._bind_weights()
                return True
            for r in self._refs:
                r.refresh(trainable)
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
        # Per-layer views, taken once: [B, KV, L, D] for the writes, [B·KV, L, D] for the batched matmuls.
        self._k_layers, self._v_layers = list(self.k_cache.unbind(0)), list(self.v_cache.unbind(0))
        flat = (batch_size * self.num_kv_heads, max_len, self.head_dim)
        self._k_flat = [c.view(flat) for c in self._k_layers]
        self._v_flat = [c.view(flat) for c in self._v_layers]
        # Additive attention mask of the cache slots, 0 where written (a prompt token or a decoded one) and
        # -inf elsewhere, one copy per kv head so that its [B·KV, 1, L] view broadcasts over a head's queries.
        self.attn_bias = torch.full((batch_size, self.num_kv_heads, 1, max_len), float("-inf"), dtype=dt, device=dev)
        self._bias_flat = self.attn_bias.view(batch_size * self.num_kv_heads, 1, max_len)
        self.tokens = torch.zeros(batch_size, dtype=torch.long, device=dev)  # [B] input of the next step
        self.positions = torch.zeros(batch_size, dtype=torch.long, device=dev)  # [B] RoPE position per row
        self.cache_pos = torch.zeros(1, dtype=torch.long, device=dev)  # the slot the next step writes
        self.cos, self.signed_sin = self._rope_tables(max_len)  # [L, D] each
        self.batch_size, self.max_len = batch_size, max_len
        return True

    @property
    def slot_valid(self) -> torch.Tensor:
        """``[B, L]`` bool: the cache slots written so far (the prompt's real tokens and the decoded ones)."""
        return self.attn_bias[:, 0, 0] == 0

    def _rope_tables(self, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin (the first half negated, see `_rotate`) for positions ``0..max_len-1`` from
        the model's own rotary module (same formula and scaling as its forward), stored in the compute
        dtype as Hugging Face casts them."""
        rotary = self._inner().rotary_emb
        positions = torch.arange(max_len, device=self.device, dtype=torch.float32)
        freqs = positions[:, None] * rotary.inv_freq.to(device=self.device, dtype=torch.float32)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        scale = float(getattr(rotary, "attention_scaling", 1.0))
        sin = (emb.sin() * scale).to(self.dtype)
        half = sin.shape[-1] // 2
        return (emb.cos() * scale).to(self.dtype), torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)

    # -- forward pieces --------------------------------------------------------------------------------

    def _qkv(
        self, layer: _Layer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h`` [B, T, C], ``cos``/``sin`` [B, 1, T, D] (``sin`` signed, see `_rotate`) → q [B, H, T, D], k and
        v [B, KV, T, D]."""
        b, t, _ = h.shape
        if layer.qkv.fused and layer.q_norm is None:
            # q and k heads are adjacent in the fused product's output: rotate them as one tensor.
            y = layer.qkv.weights_product(h)  # [B, T, (H + 2·KV)·D]
            n_qk = (self.num_heads + self.num_kv_heads) * self.head_dim
            if t == 1:  # a decode step: [B, 1, heads·D] is already [B, heads, 1, D] in memory
                qk = y[..., :n_qk].view(b, -1, 1, self.head_dim)
                v = y[..., n_qk:].view(b, self.num_kv_heads, 1, self.head_dim)
            else:
                qk = y[..., :n_qk].view(b, t, -1, self.head_dim).transpose(1, 2)
                v = y[..., n_qk:].view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
            qk = _rotate(qk, cos, sin)
            return qk[:, : self.num_heads], qk[:, self.num_heads :], v
        q, k, v = layer.qkv(h)
        q = q.view(b, t, self.num_heads, self.head_dim)
        k = k.view(b, t, self.num_kv_heads, self.head_dim)
        v = v.view(b, t, self.num_kv_heads, self.head_dim)
        if layer.q_norm is not None:
            assert layer.k_norm is not None, "q_norm and k_norm come together (qwen3)"
            q = _rms_norm(q, layer.q_norm.tensor, self.eps)
            k = _rms_norm(k, layer.k_norm.tensor, self.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        return _rotate(q, cos, sin), _rotate(k, cos, sin), v

    def _after_attention(
        self, layer: _Layer, index: int, x: torch.Tensor, q: torch.Tensor, a: torch.Tensor
    ) -> torch.Tensor:
        """The rest of layer ``index``: ``x + o(a)``, then the MLP (``x`` the layer's input, ``q`` its rotated
        queries and ``a`` ``[B, T, H·D]`` the attention output, all three recorded when recording)."""
        if self.recorder is not None:
            self.recorder.add(index, "x", x)
            self.recorder.add(index, "q", q)
            self.recorder.add(index, "a", a)
        return self._mlp(layer, _linear(a, layer.wo, layer.bo, residual=x), index)

    def _mlp(self, layer: _Layer, x: torch.Tensor, index: int) -> torch.Tensor:
        h = _rms_norm(x, layer.ln_mlp.tensor, self.eps)
        rec = self.recorder
        if layer.gate_up.fused:
            gate_up = layer.gate_up.weights_product(h)
            gate, up = gate_up.split(layer.gate_up.sizes, dim=-1)
        else:
            gate, up = layer.gate_up(h)
        if rec is not None:
            rec.add(index, "x_mid", x)
            rec.add(index, "gate_up", gate_up if layer.gate_up.fused else torch.cat([gate, up], dim=-1))
        return _linear(F.silu(gate) * up, layer.w_down, layer.b_down, residual=x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(_rms_norm(x, self.norm.tensor, self.eps), self.lm_head, self.lm_head_bias)

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
        cos, sin = self.cos[positions][:, None], self.signed_sin[positions][:, None]  # [B, 1, P, D]
        idx = torch.arange(p, device=self.device)
        causal = idx[None, :] <= idx[:, None]  # [P, P] query i sees keys j ≤ i
        # Padding keys are hidden; a padding query sees itself only, so no row of the softmax is empty.
        allowed = causal[None] & (mask[:, None, :] | torch.eye(p, dtype=torch.bool, device=self.device)[None])
        allowed = allowed[:, None]  # [B, 1, P, P]
        group = self.num_heads // self.num_kv_heads
        rec = self.recorder
        if rec is not None:
            rec.prompt(ids, mask, positions)
        x = F.embedding(ids, self.embed.tensor)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, _rms_norm(x, layer.ln_attn.tensor, self.eps), cos, sin)
            self.k_cache[i, :, :, :p] = k if repeats is None else k.repeat_interleave(repeats, dim=0)
            self.v_cache[i, :, :, :p] = v if repeats is None else v.repeat_interleave(repeats, dim=0)
            if group > 1:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [B, H, P, D]
            x = self._after_attention(layer, i, x, q, a.transpose(1, 2).reshape(b, p, -1))
        if rec is not None:
            rec.add(-1, "x", x)  # the final residual of every position (the LM head's input)
            rec.decoding = True
        logits = self._logits(x if all_logits else x[:, -1])
        if repeats is not None:
            mask, positions = mask.repeat_interleave(repeats, dim=0), positions.repeat_interleave(repeats, dim=0)
            logits = logits.repeat_interleave(repeats, dim=0)
        self.attn_bias.fill_(float("-inf"))
        self.attn_bias[..., :p].masked_fill_(mask[:, None, None, :], 0.0)
        self.cache_pos.fill_(p)
        self.positions.copy_(positions[:, -1] + 1)
        return logits

    def decode_step(self, length: int | None = None) -> torch.Tensor:
        """One token per row: reads ``tokens``, ``positions``, ``cache_pos``; writes the cache slot and
        advances the state. Only static-shape buffers are touched, so this is what gets captured.

        Attention is written out (scores, float32 softmax, weighted sum): for one query token per row
        it is two small matmuls, which on the CPU run about twice as fast as the fused
        ``scaled_dot_product_attention`` kernel, built for long queries.

        Args:
            length: Attend over cache slots ``0..length-1`` only: the eager loop passes the slots written
                so far (``cache_pos + 1``), so a step reads no unwritten cache. None attends over all
                ``max_len`` slots with the unwritten ones masked, the fixed shapes a captured graph needs.

        Returns:
            ``[B, V]`` next-token logits in the compute dtype.
        """
        b, kv, d = self.batch_size, self.num_kv_heads, self.head_dim
        n = self.max_len if length is None else length
        group = self.num_heads // kv
        # Few ops per step: at the tiny shape of bench/grpo_cpu.py a step is about 120 small ops besides its 17
        # products, so each view or mask rebuilt per step counts.
        self.attn_bias.index_fill_(3, self.cache_pos, 0.0)  # the slot this step writes
        bias = self._bias_flat[..., :n]  # [B·KV, 1, n], broadcast over a kv head's G query rows
        cos = self.cos.index_select(0, self.positions).view(b, 1, 1, d)
        sin = self.signed_sin.index_select(0, self.positions).view(b, 1, 1, d)
        # Grouped-query attention without repeating the cache: a kv head's G query heads act as G query
        # rows (one token each, so no causal structure among them), one batched matmul per (row, kv head).
        scale = d**-0.5
        x = F.embedding(self.tokens[:, None], self.embed.tensor)  # [B, 1, C]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, _rms_norm(x, layer.ln_attn.tensor, self.eps), cos, sin)
            self._k_layers[i].index_copy_(2, self.cache_pos, k)
            self._v_layers[i].index_copy_(2, self.cache_pos, v)
            keys = self._k_flat[i][:, :n].transpose(1, 2)
            scores = torch.baddbmm(bias, q.reshape(b * kv, group, d), keys, alpha=scale)
            weights = torch.softmax(scores, dim=-1, dtype=torch.float32)  # [B·KV, G, n]
            if self.dtype != torch.float32:
                weights = weights.to(self.dtype)
            a = torch.bmm(weights, self._v_flat[i][:, :n]).view(b, 1, -1)  # [B, 1, H·D]
            x = self._after_attention(layer, i, x, q, a)
        self.positions.add_(1)
        self.cache_pos.add_(1)
        if self.recorder is not None:
            self.recorder.add(-1, "x", x)
        return self._logits(x[:, 0])
