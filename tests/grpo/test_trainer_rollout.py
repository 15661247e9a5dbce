"""The trainer's rollout phase: the static engine is the default, and a LoRA run on it keeps the engine's
merged weights in step with the trained adapter after every optimizer step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from weakreward import GRPOConfig, GRPOTrainer
from weakreward.kernels.linear import packed_linear_available
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollout.hf import HFEngine
from weakreward.rollout.static import StaticEngine

PROBLEMS = [{"prompt": p, "answer": None} for p in ("1+1=", "what is 22*3?", "x")]


class DigitShare(Reward):
    name = "digit_share"

    def compute(self, rollouts):
        return RewardResult(np.asarray([sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in rollouts.completions]))


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _config(tmp_path, **kw):
    base = dict(
        steps=3,
        group_size=4,
        prompts_per_step=2,
        max_new_tokens=8,
        lr=5e-2,
        beta=0.04,
        run_dir=str(tmp_path / "run"),
        progress=False,
        lora={"r": 4, "alpha": 8.0},
    )
    base.update(kw)
    return GRPOConfig(**base)


def _engine_logits(engine: StaticEngine, ids, mask):
    engine.setup(ids.shape[0], ids.shape[1] + 1)
    with torch.no_grad():
        return engine.decoder.prefill(ids, mask, all_logits=True)[mask]


def _model_logits(model, ids, mask):
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask.long(), position_ids=positions).logits[mask]


def _train_checking_each_sync(trainer, tok):
    """Train; right after every sync record the largest gap between the engine's logits and the trained
    model's. Returns (history, gaps, how far the engine's logits moved over the run)."""
    engine = trainer.engine
    enc = tok(["1+1=", "what is 22*3?"], return_tensors="pt", padding=True)
    ids, mask = enc.input_ids, enc.attention_mask.bool()
    gaps = []
    original_sync = engine.sync_weights

    def sync():
        original_sync()
        gaps.append((_engine_logits(engine, ids, mask) - _model_logits(trainer.model, ids, mask)).abs().max())

    engine.sync_weights = sync  # type: ignore[method-assign]
    before = _engine_logits(engine, ids, mask)
    history = trainer.train()
    return history, gaps, (_engine_logits(engine, ids, mask) - before).abs().max()


def test_lora_run_on_the_static_engine_syncs_the_adapter_every_step(tmp_path, tok):
    trainer = GRPOTrainer(tiny_llama(tok, seed=1), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path))
    engine = trainer.engine
    assert isinstance(engine, StaticEngine) and not engine.decoder.shares_all_weights  # LoRA: merged snapshots
    history, synced, moved = _train_checking_each_sync(trainer, tok)
    assert [m["step"] for m in history] == [1, 2, 3]
    assert len(synced) == 3 and max(synced) < 1e-5
    assert moved > 1e-4  # the adapter did move the policy
    assert all(np.isfinite(m["loss"]) and m["completion_len/mean"] > 0 for m in history)


def test_without_the_sync_the_engine_would_sample_from_stale_weights(tmp_path, tok):
    """The check above can fail: skipping the sync leaves the engine's snapshot behind the adapter."""
    trainer = GRPOTrainer(tiny_llama(tok, seed=1), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path))
    engine = trainer.engine
    engine.sync_weights = lambda: None  # type: ignore[method-assign]
    engine.decoder.refresh_weights = lambda: False  # type: ignore[method-assign]  # generate refreshes too
    enc = tok(["1+1="], return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask.bool()
    trainer.train()
    stale = (_engine_logits(engine, ids, mask) - _model_logits(trainer.model, ids, mask)).abs().max()
    assert stale > 1e-4


def test_default_engine_is_static_for_llama_and_hf_for_other_models(tmp_path, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    llama = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, lora=None))
    assert isinstance(llama.engine, StaticEngine)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=128))
    other = GRPOTrainer(gpt2, DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, lora=None, steps=1))
    assert isinstance(other.engine, HFEngine)
    assert other.train()[0]["step"] == 1  # the fallback trains too (an unshared-prompt forward for GPT-2)


def test_a_bf16_rollout_of_a_float32_policy_follows_the_optimizer(tmp_path, tok):
    """rollout_dtype="bfloat16": the engine samples from bf16 snapshots of the fp32 weights, refreshed every
    step, while the policy and its log-probs stay float32."""
    cfg = _config(tmp_path, lora=None, beta=0.0, rollout_dtype="bfloat16")
    trainer = GRPOTrainer(tiny_llama(tok, seed=1), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    engine = trainer.engine
    assert isinstance(engine, StaticEngine) and engine.decoder.dtype == torch.bfloat16
    assert next(trainer.model.parameters()).dtype == torch.float32
    embed = trainer.model.get_input_embeddings().weight
    before = embed.detach().clone()
    history = trainer.train()
    assert (embed.detach() - before).abs().max() > 1e-4  # the policy moved (lr 5e-2)
    # After the last sync the snapshot is exactly the fp32 parameter rounded to bf16.
    assert engine.decoder.embed.tensor.dtype == torch.bfloat16
    assert torch.equal(engine.decoder.embed.tensor, embed.detach().to(torch.bfloat16))
    assert all(np.isfinite(m["loss"]) for m in history)


def test_rollout_dtype_auto_is_the_policys_own_on_the_cpu(tmp_path, tok):
    trainer = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, lora=None))
    assert trainer.config.rollout_dtype == "auto" and trainer.engine.decoder.dtype == torch.float32
    # Float32 weights, packed for oneDNN where this torch has it; read in place (no copies) where not.
    assert trainer.engine.decoder.shares_all_weights == (not packed_linear_available())


def test_full_fine_tuning_on_the_default_engine_follows_the_optimizer_every_step(tmp_path, tok):
    """No LoRA: every weight is trainable; on the CPU they are packed copies, re-packed by each sync."""
    cfg = _config(tmp_path, lora=None)
    trainer = GRPOTrainer(tiny_llama(tok, seed=1), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    engine = trainer.engine
    assert isinstance(engine, StaticEngine)
    _, synced, moved = _train_checking_each_sync(trainer, tok)
    assert len(synced) == 3 and max(synced) < 1e-5
    assert moved > 1e-4


def test_cpu_autocast_always_computes_the_training_forward_in_bf16(tmp_path, tok):
    """autocast="always" on the CPU: the log-probs are those of bf16 matmuls (not the fp32 ones), the
    parameters stay float32; "never" (and false) leaves the forward in float32."""
    model = tiny_llama(tok, seed=3)
    runs = {}
    for mode in ("always", "never"):
        cfg = _config(tmp_path / mode, lora=None, beta=0.0, autocast=mode, steps=1)
        trainer = GRPOTrainer(copy.deepcopy(model), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
        gen = trainer.engine.generate(
            *trainer._encode(["1+1=", "1+1="]),
            max_new_tokens=6,
            temperature=1.0,
            top_p=1.0,
            generator=torch.Generator().manual_seed(0),
        )
        with torch.no_grad():
            runs[mode] = trainer._token_stats(trainer.model, gen, slice(0, 2), 1.0).logprobs
        assert next(trainer.model.parameters()).dtype == torch.float32
    gap = (runs["always"] - runs["never"]).abs().max()
    assert 1e-5 < gap < 0.2  # bf16 rounding of the matmuls: visible, small
    assert GRPOConfig(autocast=False).autocast == "never" and GRPOConfig(autocast=True).autocast == "cuda"
    with pytest.raises(ValueError, match="autocast"):
        GRPOConfig(autocast="sometimes")


def test_truncated_frac_counts_the_rows_whose_last_token_is_not_eos(tmp_path, tok):
    cfg = _config(tmp_path, lora=None, beta=0.0, steps=1, max_new_tokens=3)
    trainer = GRPOTrainer(tiny_llama(tok, seed=2), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    seen = []
    generate = trainer.engine.generate

    def recording(*args, **kwargs):
        gen = generate(*args, **kwargs)
        # A random model almost never samples EOS: end every third row with one, so both kinds occur.
        eos_id = trainer.engine.eos_ids[0]
        for row in range(0, len(gen.completion_ids), 3):
            last = int(gen.completion_mask[row].sum()) - 1
            gen.completion_ids[row, last] = eos_id
        seen.append(gen)
        return gen

    trainer.engine.generate = recording  # type: ignore[method-assign]
    metrics = trainer.train_step(1)
    (gen,) = seen
    eos = set(trainer.engine.eos_ids)
    cut = 0
    for ids, mask in zip(gen.completion_ids.tolist(), gen.completion_mask.tolist()):
        real = [t for t, m in zip(ids, mask) if m]
        cut += not (real and real[-1] in eos)
    assert 0 < cut < len(gen.completion_ids)
    assert metrics["truncated_frac"] == pytest.approx(cut / len(gen.completion_ids))
