"""Choosing the rollout engine: static for the llama family on any device, HF generate otherwise."""

import logging

import pytest

from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rollout.hf import HFEngine
from weakreward.rollout.selection import make_engine, resolve_engine_name
from weakreward.rollout.static import StaticEngine


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _gpt2(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2))


def test_auto_picks_static_for_supported_models(tok):
    assert resolve_engine_name("auto", tiny_llama(tok)) == "static"
    assert resolve_engine_name("auto", tiny_llama(tok, architecture="qwen3", head_dim=16)) == "static"
    assert isinstance(make_engine("auto", tiny_llama(tok), tok), StaticEngine)


def test_auto_falls_back_to_hf_with_a_logged_reason(tok, caplog):
    with caplog.at_level(logging.INFO, logger="weakreward.rollout.selection"):
        assert resolve_engine_name("auto", _gpt2(tok)) == "hf"
    assert "model_type 'gpt2'" in caplog.text
    assert isinstance(make_engine("auto", _gpt2(tok), tok), HFEngine)


def test_cuda_graph_is_an_alias_of_static_and_hf_is_always_honoured(tok):
    assert resolve_engine_name("cuda-graph", tiny_llama(tok)) == "static"
    assert resolve_engine_name("hf", tiny_llama(tok)) == "hf"
    assert isinstance(make_engine("hf", tiny_llama(tok), tok), HFEngine)


def test_unknown_engine_name_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="engine must be one of"):
        make_engine("vllm", tiny_llama(tok), tok)


def test_asking_for_static_on_an_unsupported_model_says_why(tok):
    with pytest.raises(ValueError, match="model_type 'gpt2'"):
        make_engine("static", _gpt2(tok), tok)
