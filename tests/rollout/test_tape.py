"""The rollout's recorded forward, replayed backward (`ActivationTape`), against autograd through the Hugging
Face model on the same completions, on tiny random models (CPU)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.grpo.forward import completion_token_stats
from weakreward.kernels.token_stats import token_stats_from_logits
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rollout.static import StaticEngine
from weakreward.rollout.static_decoder import StaticDecoder
from weakreward.rollout.tape import tape_unsupported_reason

# Groups of equal prompts (shared prefill) with prompts of different lengths (left padding).
PROMPTS = ["1+1=", "1+1=", "1+1=", "what is 22*3?", "what is 22*3?", "7"]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _rollout(tok, model, prompts=PROMPTS, *, seed=0, new_tokens=10, temperature=0.7, share=True):
    enc = tok(prompts, return_tensors="pt", padding=True)
    engine = StaticEngine(model, tok, share_prompts=share)
    return engine.generate(
        enc["input_ids"],
        enc["attention_mask"].bool(),
        max_new_tokens=new_tokens,
        temperature=temperature,
        top_p=1.0,
        generator=torch.Generator().manual_seed(seed),
        record=True,
    )


def _loss(stats, mask, seed=1):
    """A loss that reads every statistic, with a different weight per token."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(mask.shape, generator=g, dtype=stats.logprobs.dtype)
    w2 = torch.randn(mask.shape, generator=g, dtype=stats.logprobs.dtype)
    terms = stats.logprobs * w1 + 0.3 * stats.entropy * w2 + 0.1 * stats.self_certainty
    return (terms * mask).sum()


def _tape_grads(model, gen, temperature):
    model.zero_grad(set_to_none=True)
    logits = gen.tape.logits(gen.completion_ids.shape[1]).requires_grad_()
    stats = token_stats_from_logits(logits, gen.completion_ids, gen.completion_mask, temperature)
    _loss(stats, gen.completion_mask).backward()
    gen.tape.backward(logits.grad, gen.completion_ids, gen.completion_mask)
    return stats, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _autograd_grads(model, gen, temperature):
    model.zero_grad(set_to_none=True)
    stats = completion_token_stats(
        model,
        gen.prompt_ids,
        gen.prompt_mask,
        gen.completion_ids,
        gen.completion_mask,
        temperature,
        share_prompts=False,
    )
    _loss(stats, gen.completion_mask).backward()
    return stats, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same_grads(got, want, rtol):
    assert got.keys() == want.keys()
    for name, ref in want.items():
        scale = ref.abs().max().clamp(min=1e-12)
        err = float((got[name] - ref).abs().max() / scale)
        assert err < rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("share", [True, False])
def test_gradients_equal_autograd_through_the_model_in_float64(tok, arch, share):
    model = tiny_llama(tok, architecture=arch, hidden_size=64, num_layers=2).double()
    gen = _rollout(tok, model, share=share)
    assert not gen.prompt_mask.all() and not gen.completion_mask.all()  # padding on both sides
    stats, got = _tape_grads(model, gen, 0.7)
    ref_stats, want = _autograd_grads(model, gen, 0.7)
    mask = gen.completion_mask
    torch.testing.assert_close(stats.logprobs.detach()[mask], ref_stats.logprobs.detach()[mask], atol=1e-6, rtol=0)
    # The decoder normalises in float32 as Hugging Face's RMSNorm does, so float64 agrees to ~1e-7.
    _assert_same_grads(got, want, rtol=1e-5)
    assert set(got) == {n for n, p in model.named_parameters()}  # every parameter got its gradient


def test_gradients_equal_autograd_in_float32_with_tied_embeddings(tok):
    model = tiny_llama(tok, hidden_size=64, num_layers=2, tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    gen = _rollout(tok, model, temperature=1.0)
    _, got = _tape_grads(model, gen, 1.0)
    _, want = _autograd_grads(model, gen, 1.0)
    _assert_same_grads(got, want, rtol=1e-4)


def _lora(model, dropout=0.0, layers=None, seed=0):
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # peft starts B at zero, where A's gradient vanishes: give both factors values
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_lora_gradients_equal_autograd_through_the_peft_model(tok, arch):
    base = tiny_llama(tok, architecture=arch, hidden_size=64, num_layers=3).double()
    model = _lora(base, layers=[1, 2])  # layer 0 has no adapter: the backward stops above it
    assert tape_unsupported_reason(StaticDecoder(model)) is None
    gen = _rollout(tok, model)
    _, got = _tape_grads(model, gen, 0.7)
    _, want = _autograd_grads(model, gen, 0.7)
    assert set(want) == {n for n, p in model.named_parameters() if p.requires_grad} and len(want) == 2 * 7 * 2
    _assert_same_grads(got, want, rtol=1e-5)
    # Only the adapted layers (and the final residual) were recorded; training layer 0 now is refused.
    assert {layer for layer, _ in gen.tape.recorder.prefill} == {-1, 1, 2}
    next(p for n, p in model.named_parameters() if ".layers.0." in n).requires_grad_(True)
    with pytest.raises(ValueError, match="record again"):
        gen.tape.backward(
            torch.zeros(*gen.completion_ids.shape, len(tok), dtype=torch.float64),
            gen.completion_ids,
            gen.completion_mask,
        )


def test_frozen_parameters_get_no_gradient_and_the_rest_match(tok):
    model = tiny_llama(tok, hidden_size=64, num_layers=3).double()
    for name, p in model.named_parameters():
        # Train only layer 1's MLP and the LM head: the backward stops under layer 1.
        p.requires_grad_(name.startswith("model.layers.1.mlp") or name.startswith("lm_head"))
    gen = _rollout(tok, model)
    _, got = _tape_grads(model, gen, 0.7)
    _, want = _autograd_grads(model, gen, 0.7)
    assert set(got) == {n for n, p in model.named_parameters() if p.requires_grad}
    _assert_same_grads(got, want, rtol=1e-5)


def test_a_single_token_completion_takes_its_gradient_through_the_prompt(tok):
    model = tiny_llama(tok, hidden_size=64, num_layers=2).double()
    gen = _rollout(tok, model, new_tokens=1)
    assert gen.completion_ids.shape[1] == 1
    _, got = _tape_grads(model, gen, 0.7)
    _, want = _autograd_grads(model, gen, 0.7)
    _assert_same_grads(got, want, rtol=1e-5)


def test_backward_accumulates_into_existing_gradients(tok):
    model = tiny_llama(tok, hidden_size=32, num_layers=1).double()
    gen = _rollout(tok, model)
    _, once = _tape_grads(model, gen, 0.7)
    grad = torch.randn(*gen.completion_ids.shape, len(tok), dtype=torch.float64)
    model.zero_grad(set_to_none=True)
    gen.tape.backward(grad, gen.completion_ids, gen.completion_mask)
    first = {n: p.grad.clone() for n, p in model.named_parameters()}
    gen.tape.backward(grad, gen.completion_ids, gen.completion_mask)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2 * first[name])
    assert once  # the fixture's own backward ran too


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    groups=st.lists(st.tuples(st.sampled_from(["1+1=", "x", "what is 9-4?", "ab"]), st.integers(1, 3)), min_size=1),
)
def test_gradients_match_autograd_for_any_grouping_of_prompts(tok, seed, groups):
    prompts = [p for p, n in groups[:4] for _ in range(n)]
    model = tiny_llama(tok, hidden_size=32, num_layers=2, seed=seed % 7).double()
    gen = _rollout(tok, model, prompts, seed=seed, new_tokens=6)
    _, got = _tape_grads(model, gen, 0.7)
    _, want = _autograd_grads(model, gen, 0.7)
    _assert_same_grads(got, want, rtol=1e-5)


def test_unsupported_models_are_named_and_refused(tok):
    qwen3 = tiny_llama(tok, architecture="qwen3", head_dim=16)
    assert "qwen3" in tape_unsupported_reason(StaticDecoder(qwen3))
    assert "float32" in tape_unsupported_reason(StaticDecoder(tiny_llama(tok), dtype=torch.bfloat16))
    lora = _lora(tiny_llama(tok), dropout=0.1)
    assert "dropout" in tape_unsupported_reason(StaticDecoder(lora))
    engine = StaticEngine(qwen3, tok)
    assert not engine.records
    enc = tok(["1+1="], return_tensors="pt")
    with pytest.raises(ValueError, match="cannot record"):
        engine.generate(
            enc["input_ids"], enc["attention_mask"].bool(), max_new_tokens=2, temperature=1.0, top_p=1.0, record=True
        )


def test_recording_does_not_change_what_is_sampled(tok):
    model = tiny_llama(tok, hidden_size=64, num_layers=2)
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    engine = StaticEngine(model, tok)
    outs = [
        engine.generate(
            enc["input_ids"],
            enc["attention_mask"].bool(),
            max_new_tokens=8,
            temperature=1.0,
            top_p=1.0,
            generator=torch.Generator().manual_seed(5),
            record=record,
        )
        for record in (False, True)
    ]
    assert torch.equal(outs[0].completion_ids, outs[1].completion_ids)
    assert outs[0].tape is None and outs[1].tape is not None
    assert engine.decoder.recorder is None  # recording ends with the call
