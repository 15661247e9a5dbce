"""Choosing a rollout engine by name: ``"static"`` (alias ``"cuda-graph"``), ``"hf"`` or ``"auto"``."""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from weakreward.rollout.engine import RolloutEngine
from weakreward.rollout.hf import HFEngine
from weakreward.rollout.static import StaticEngine
from weakreward.rollout.static_decoder import unsupported_reason

logger = logging.getLogger(__name__)

ENGINE_NAMES = ("auto", "static", "cuda-graph", "hf")
"""The names `make_engine` accepts; ``"cuda-graph"`` is the static engine's former name."""


def resolve_engine_name(name: str, model: Any = None) -> str:
    """The engine ``name`` stands for: ``"auto"`` is ``"static"`` when the model's architecture is
    supported (the llama family: Llama, SmolLM, Qwen2/2.5, Qwen3), on the CPU and on CUDA alike, else
    ``"hf"`` with a logged reason; ``"cuda-graph"`` is ``"static"``.

    Args:
        name: One of `ENGINE_NAMES`.
        model: The policy, checked by ``"auto"``; None makes ``"auto"`` resolve to ``"hf"``.

    Raises:
        ValueError: for a name not in `ENGINE_NAMES`.

    Examples:
        >>> from weakreward.models import tiny_llama
        >>> resolve_engine_name("auto", tiny_llama()), resolve_engine_name("cuda-graph"), resolve_engine_name("hf")
        ('static', 'static', 'hf')
    """
    if name not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {list(ENGINE_NAMES)}, got {name!r}")
    if name == "cuda-graph":
        return "static"
    if name != "auto":
        return name
    reason = "no model given" if model is None else unsupported_reason(model)
    if reason is not None:
        logger.info("rollout engine: HF generate (the static engine does not support this model: %s)", reason)
        return "hf"
    return "static"


def make_engine(
    name: str,
    model: Any,
    tokenizer: Any,
    *,
    dtype: torch.dtype | None = None,
    cpu_linear: Literal["onednn", "torch"] = "onednn",
) -> RolloutEngine:
    """Build the rollout engine called ``name`` (see `resolve_engine_name`) for ``model``.

    By default the static engine computes in the policy's own dtype. On CUDA it reads the trainer's
    parameters in place and captures its decode step as a CUDA graph; on the CPU it serves the linear
    weights packed for oneDNN. LoRA adapters are served from merged snapshots; snapshots and packed
    weights are refreshed by ``sync_weights``.

    Args:
        name: One of `ENGINE_NAMES`.
        model: The policy (a HF causal LM, optionally wrapped by peft).
        tokenizer: Its tokenizer (pad and EOS ids; decoding).
        dtype: The static engine's compute dtype (None: the model's). Another dtype than the model's
            serves snapshots of the weights, refreshed by ``sync_weights``. The HF engine ignores it.
        cpu_linear: The HF engine's float32 CPU linear layers: ``"onednn"`` or ``"torch"`` (see
            `HFEngine`); the static engine serves its own packed oneDNN products on the CPU.

    Raises:
        ValueError: for a name not in `ENGINE_NAMES`.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> type(make_engine("auto", tiny_llama(tok), tok)).__name__
        'StaticEngine'
    """
    if resolve_engine_name(name, model) == "static":
        return StaticEngine(model, tokenizer, dtype=dtype)
    return HFEngine(model, tokenizer, cpu_linear=cpu_linear)
