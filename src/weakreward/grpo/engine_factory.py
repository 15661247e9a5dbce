"""Choosing a rollout engine by name: ``"hf"``, ``"cuda-graph"`` or ``"auto"``.

Engines register a factory ``(model, tokenizer, config) -> RolloutEngine`` under a name. ``"hf"`` is
built in. ``"cuda-graph"`` lives in ``weakreward.kernels.cuda_graph_engine``, which registers itself
when imported (``register_engine("cuda-graph", factory)``); `make_engine` imports it on demand.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import torch

from weakreward.grpo.engine import RolloutEngine
from weakreward.grpo.hf_engine import HFEngine

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Any, Any, Any], RolloutEngine]

_ENGINES: dict[str, EngineFactory] = {"hf": lambda model, tokenizer, config: HFEngine(model, tokenizer)}
# Engines that live in optional modules, imported the first time they are asked for.
_ENGINE_MODULES: dict[str, str] = {"cuda-graph": "weakreward.kernels.cuda_graph_engine"}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``GRPOConfig(engine=name)`` build engines with ``factory(model, tokenizer, config)``."""
    _ENGINES[name] = factory


def resolve_engine_name(name: str, device: Any, model: Any = None) -> str:
    """The engine ``"auto"`` stands for: ``"cuda-graph"`` on a CUDA device when the model's architecture
    is supported (the llama family: Llama, SmolLM, Qwen2/2.5, Qwen3), else ``"hf"``.

    An unsupported architecture on CUDA falls back to ``"hf"`` with a logged note naming the reason.

    Examples:
        >>> resolve_engine_name("auto", "cpu")
        'hf'
        >>> resolve_engine_name("hf", "cuda")
        'hf'
    """
    if name != "auto":
        return name
    if device is None or torch.device(device).type != "cuda" or model is None:
        return "hf"
    from weakreward.kernels.static_decoder import unsupported_reason

    reason = unsupported_reason(model)
    if reason is not None:
        logger.info("rollout engine: HF generate (the CUDA-graph engine does not support this model: %s)", reason)
        return "hf"
    return "cuda-graph"


def make_engine(name: str, model: Any, tokenizer: Any, config: Any, device: Any = None) -> RolloutEngine:
    """Build the rollout engine called ``name`` for ``model``.

    Raises:
        ValueError: for an unknown name, or when the module of an optional engine is missing or did not
            register the engine.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> type(make_engine("auto", tiny_llama(tok), tok, None)).__name__
        'HFEngine'
    """
    name = resolve_engine_name(name, device, model)
    if name not in _ENGINES and name in _ENGINE_MODULES:
        module = _ENGINE_MODULES[name]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is not None and module.startswith(err.name):
                raise ValueError(
                    f"engine={name!r} needs the module {module}, which is not available in this install: "
                    'use engine="hf" (or "auto")'
                ) from err
            raise
        if name not in _ENGINES:
            raise ValueError(f"{module} was imported but did not call register_engine({name!r}, ...)")
    if name not in _ENGINES:
        raise ValueError(
            f"engine must be one of {sorted(set(_ENGINES) | set(_ENGINE_MODULES) | {'auto'})}, got {name!r}"
        )
    return _ENGINES[name](model, tokenizer, config)
