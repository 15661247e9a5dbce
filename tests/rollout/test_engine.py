"""The rollout seam: the completion mask and the EOS/pad ids every engine shares."""

import pytest
import torch

from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rollout.engine import completion_mask, eos_token_ids, pad_token_id, prompt_runs
from weakreward.rollout.hf import HFEngine
from weakreward.rollout.static import StaticEngine


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[7, 3, 3, 3], [3, 9, 9, 9], [5, 6, 7, 8]])
    assert completion_mask(ids, [3]).tolist() == [
        [True, True, False, False],
        [True, False, False, False],
        [True, True, True, True],
    ]


def test_completion_mask_honours_every_eos_id():
    ids = torch.tensor([[7, 4, 3], [3, 9, 4]])
    assert completion_mask(ids, [3, 4]).tolist() == [[True, True, False], [True, False, False]]


def test_eos_ids_join_generation_config_and_tokenizer_and_both_engines_agree():
    tok = char_tokenizer()
    model = tiny_llama(tok)
    model.generation_config.eos_token_id = [tok.eos_token_id, 7]  # a chat model's end-of-turn id
    assert eos_token_ids(model, tok) == sorted({tok.eos_token_id, 7})
    assert HFEngine(model, tok).eos_ids == StaticEngine(model, tok).eos_ids == eos_token_ids(model, tok)
    assert HFEngine(model, tok).pad_id == StaticEngine(model, tok).pad_id == tok.pad_token_id


def test_pad_id_falls_back_to_eos_and_fails_clearly_without_either():
    class NoPad:
        pad_token_id = None
        eos_token_id = 5

    class Nothing:
        pad_token_id = None
        eos_token_id = None

    assert pad_token_id(NoPad()) == 5
    assert pad_token_id(Nothing(), [9]) == 9
    with pytest.raises(ValueError, match="pad_token_id"):
        pad_token_id(Nothing())


def test_prompt_runs_ignore_padding_ids_and_need_neighbours():
    ids = torch.tensor([[0, 5, 6], [9, 5, 6], [7, 5, 6]])
    mask = torch.tensor([[False, True, True], [False, True, True], [True, True, True]])
    assert prompt_runs(ids, mask).tolist() == [2, 1]  # rows 0 and 1 differ only in padding
    assert prompt_runs(ids[1:], mask[1:]) is None  # nothing to share


@pytest.mark.parametrize("cpu_linear", ["onednn", "torch"])
def test_hf_engine_generates_under_onednn_linear_as_cpu_linear_says(cpu_linear):
    from torch.overrides import _get_current_function_mode_stack

    from weakreward.kernels.linear import packed_linear_available
    from weakreward.rollout.selection import make_engine

    tok = char_tokenizer()
    model = tiny_llama(tok)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(len(_get_current_function_mode_stack())))
    engine = make_engine("hf", model, tok, cpu_linear=cpu_linear)
    assert isinstance(engine, HFEngine) and engine.cpu_linear == cpu_linear
    enc = tok(["1+1=", "2+2="], return_tensors="pt", padding=True)
    gen = engine.generate(enc.input_ids, enc.attention_mask.bool(), max_new_tokens=4, temperature=1.0, top_p=1.0)
    assert gen.completion_ids.shape[0] == 2 and modes
    routed = cpu_linear == "onednn" and packed_linear_available()
    assert all(n == (1 if routed else 0) for n in modes)
    assert _get_current_function_mode_stack() == []


def test_hf_engine_rejects_an_unknown_cpu_linear():
    tok = char_tokenizer()
    with pytest.raises(ValueError, match="cpu_linear"):
        HFEngine(tiny_llama(tok), tok, cpu_linear="mkl")
