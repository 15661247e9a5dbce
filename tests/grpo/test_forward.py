"""The training forward with each prompt computed once per group equals the unshared forward: statistics
and gradients, LoRA and full fine-tuning, micro-batches that split a group, mixed prompt lengths."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from weakreward import GRPOConfig, GRPOTrainer
from weakreward.grpo.forward import completion_token_stats
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rewards.base import Reward, RewardResult

# Mixed lengths, so the batch is left-padded and the groups' prompts differ in padding.
PROMPTS = ["1+1=", "what is 22*3? answer:", "x"]
GROUP = 3
STATS = ("logprobs", "entropy", "self_certainty")


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture
def float64_norms(monkeypatch):
    """Hugging Face's RMSNorm computes in float32 even in a float64 model, which would cap a float64
    comparison at float32's rounding: patch it to compute in the input dtype (same formula)."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    for cls in (LlamaRMSNorm, Qwen2RMSNorm, Qwen3RMSNorm):
        monkeypatch.setattr(cls, "forward", forward)


def _batch(tok, t=7, seed=0):
    """Three prompts × GROUP rows, completions right-padded after an early end in some rows."""
    enc = tok([p for p in PROMPTS for _ in range(GROUP)], return_tensors="pt", padding=True)
    b = enc.input_ids.shape[0]
    g = torch.Generator().manual_seed(seed)
    c_ids = torch.randint(4, len(tok), (b, t), generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    c_mask = torch.arange(t)[None, :] < lengths[:, None]
    c_ids = c_ids.masked_fill(~c_mask, tok.pad_token_id)
    return enc.input_ids, enc.attention_mask.bool(), c_ids, c_mask


def _lora(model):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    return get_peft_model(model, config)


def _stats_and_grads(model, batch, share, rows=None, temperature=0.7):
    p_ids, p_mask, c_ids, c_mask = batch
    rows = rows or [slice(0, p_ids.shape[0])]
    model.zero_grad(set_to_none=True)
    weights = torch.randn(3, *c_ids.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = {name: [] for name in STATS}
    for r in rows:
        ts = completion_token_stats(model, p_ids[r], p_mask[r], c_ids[r], c_mask[r], temperature, share_prompts=share)
        loss = sum(
            (getattr(ts, n) * weights[i, r].to(ts.logprobs.dtype) * c_mask[r]).sum() for i, n in enumerate(STATS)
        )
        loss.backward()
        for n in STATS:
            out[n].append(getattr(ts, n).detach())
    stats = {n: torch.cat(v) for n, v in out.items()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return stats, grads


def _assert_equal_paths(model, batch, atol, rows=None):
    shared_stats, shared_grads = _stats_and_grads(model, batch, True, rows)
    plain_stats, plain_grads = _stats_and_grads(model, batch, False, rows)
    mask = batch[3]
    for n in STATS:
        torch.testing.assert_close(shared_stats[n][mask], plain_stats[n][mask], atol=atol, rtol=atol)
    assert shared_grads.keys() == plain_grads.keys() and plain_grads
    for n in plain_grads:
        torch.testing.assert_close(shared_grads[n], plain_grads[n], atol=atol, rtol=atol, msg=n)
    assert any(g.abs().max() > 1e-6 for g in plain_grads.values())  # the check can fail


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_full_finetune_statistics_and_gradients_equal_the_unshared_forward_float64(tok, float64_norms, arch):
    kwargs = {"head_dim": 16} if arch == "qwen3" else {}
    model = tiny_llama(tok, architecture=arch, seed=2, **kwargs).double()
    _assert_equal_paths(model, _batch(tok), atol=1e-10)


def test_lora_statistics_and_gradients_equal_the_unshared_forward_float64(tok, float64_norms):
    model = _lora(tiny_llama(tok, architecture="qwen2", seed=3).double())
    _assert_equal_paths(model, _batch(tok), atol=1e-10)
    assert all("lora" in n for n, p in model.named_parameters() if p.requires_grad)


def test_micro_batches_that_split_groups_stay_equal(tok, float64_norms):
    model = tiny_llama(tok, seed=4).double()
    rows = [slice(0, 4), slice(4, 5), slice(5, 9)]  # groups of 3 cut at 4 and 5: runs [3, 1], [1], [1, 3]
    _assert_equal_paths(model, _batch(tok), atol=1e-10, rows=rows)


def test_float32_stays_within_1e5_of_the_unshared_forward(tok):
    model = _lora(tiny_llama(tok, seed=5))
    _assert_equal_paths(model, _batch(tok, t=9, seed=3), atol=1e-5)


def test_a_single_completion_token_uses_only_the_prompt_forward(tok, float64_norms):
    model = tiny_llama(tok, seed=6).double()
    _assert_equal_paths(model, _batch(tok, t=1), atol=1e-10)


def test_distinct_prompts_take_the_unshared_forward(tok):
    model = tiny_llama(tok, seed=7).double()
    p_ids, p_mask, c_ids, c_mask = _batch(tok)
    rows = [0, GROUP, 2 * GROUP]  # one row per prompt: nothing to share
    a = completion_token_stats(model, p_ids[rows], p_mask[rows], c_ids[rows], c_mask[rows], 1.0)
    b = completion_token_stats(model, p_ids[rows], p_mask[rows], c_ids[rows], c_mask[rows], 1.0, share_prompts=False)
    assert torch.equal(a.logprobs, b.logprobs)


@pytest.mark.parametrize("t, shares", [(7, True), (64, False)])
def test_the_default_shares_only_when_it_saves_a_quarter_of_the_positions(tok, t, shares):
    """Prompts of width P = 21 in 3 groups of 3: with 7 completion tokens the shared forward runs
    3·21 + 9·6 = 117 of 9·28 = 252 positions (shared); with 64 it runs 630 of 765 (unshared)."""
    model = tiny_llama(tok, seed=8)
    p_ids, p_mask, c_ids, c_mask = _batch(tok, t=t)
    assert p_ids.shape == (9, 21)
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    default = completion_token_stats(model, p_ids, p_mask, c_ids, c_mask, 1.0)
    assert len(calls) == (2 if shares else 1)  # the shared forward is a prompt pass and a completion pass
    same = completion_token_stats(model, p_ids, p_mask, c_ids, c_mask, 1.0, share_prompts=shares)
    assert torch.equal(default.logprobs, same.logprobs)


# -- the training step -------------------------------------------------------------------------------
class DigitShare(Reward):
    name = "digit_share"

    def compute(self, rollouts):
        return RewardResult(np.asarray([sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in rollouts.completions]))


@pytest.mark.parametrize("lora", [True, False])
def test_reused_forward_equals_recomputed_forward_in_loss_and_gradients(tmp_path, tok, lora, monkeypatch):
    """One update over one micro-batch keeps the statistics forward's graph for the loss; forcing the
    loss to recompute its forward must give the same loss and the same gradients."""
    problems = [{"prompt": p, "answer": "2"} for p in PROMPTS]
    model = tiny_llama(tok, seed=8)
    captured = {}
    clip = torch.nn.utils.clip_grad_norm_

    def run(reuse):
        cfg = GRPOConfig(
            steps=1,
            group_size=GROUP,
            prompts_per_step=3,
            max_new_tokens=6,
            lr=1e-2,
            beta=0.0 if lora else 0.04,
            lora={"r": 4, "alpha": 8.0} if lora else None,
            grad_clip=1.0,
            run_dir=str(tmp_path / f"run{reuse}"),
            progress=False,
        )
        trainer = GRPOTrainer(copy.deepcopy(model), DigitShare(), problems, tokenizer=tok, config=cfg)
        monkeypatch.setattr(trainer, "_reuse_forward", lambda n: reuse)

        def record(params, *args, **kwargs):  # the gradients as the backward left them, before clipping
            captured[reuse] = {n: p.grad.clone() for n, p in trainer.trainable if p.grad is not None}
            return clip(params, *args, **kwargs)

        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record)
        return trainer.train_step(1)

    reused, recomputed = run(True), run(False)
    assert reused["loss"] == pytest.approx(recomputed["loss"], abs=1e-6)
    assert captured[True].keys() == captured[False].keys() and captured[True]
    for name, grad in captured[True].items():
        torch.testing.assert_close(grad, captured[False][name], atol=1e-6, rtol=1e-5, msg=name)
    assert any(g.abs().max() > 0 for g in captured[True].values())
