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
