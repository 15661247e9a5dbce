"""The static decoder and the static rollout engine (CUDA-graph mode on CUDA) against Hugging Face, on tiny
random models (CPU)."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from weakreward.kernels.linear import packed_linear_available
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rollout.engine import Generation, RolloutEngine, prompt_runs
from weakreward.rollout.static import StaticEngine, sample_tokens, supports
from weakreward.rollout.static_decoder import StaticDecoder, unsupported_reason

ARCHITECTURES = {
    "llama": {},
    "qwen2": {},  # q/k/v biases
    "qwen3": {"head_dim": 16},  # q/k RMSNorm; head_dim differs from hidden/heads in real Qwen3 too
}
PROMPTS = ["1+1=", "what is 22*3? answer:", "x", "a longer prompt, with some padding"]
gpu = pytest.mark.gpu
needs_packing = pytest.mark.skipif(not packed_linear_available(), reason="this torch has no oneDNN packed linear")


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _batch(tok, prompts=PROMPTS):
    enc = tok(prompts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"].bool()


def _model(tok, arch, **kwargs):
    return tiny_llama(tok, architecture=arch, **ARCHITECTURES[arch], **kwargs).eval()


def _hf_logits(model, ids, mask):
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask.long(), position_ids=positions).logits


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_prefill_logits_match_hf_on_left_padded_batch(tok, arch):
    model = _model(tok, arch)
    ids, mask = _batch(tok)
    assert not mask.all()  # the batch really is left-padded
    decoder = StaticDecoder(model)
    decoder.setup(len(PROMPTS), 64)
    with torch.no_grad():
        got = decoder.prefill(ids, mask, all_logits=True)
    ref = _hf_logits(model, ids, mask)
    torch.testing.assert_close(got[mask], ref[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("sliced", [False, True])
def test_decode_steps_match_hf_full_forward(tok, arch, sliced):
    """Teacher-forced decode steps reproduce the logits of one HF forward over prompt + continuation, both
    over every cache slot with the unwritten ones masked (the captured step) and over the written slots
    only (the eager loop)."""
    model = _model(tok, arch)
    ids, mask = _batch(tok)
    cont = torch.randint(4, len(tok), (len(PROMPTS), 6), generator=torch.Generator().manual_seed(0))
    decoder = StaticDecoder(model)
    decoder.setup(len(PROMPTS), 64)
    steps = []
    with torch.no_grad():
        steps.append(decoder.prefill(ids, mask))
        for t in range(cont.shape[1] - 1):
            decoder.tokens.copy_(cont[:, t])
            steps.append(decoder.decode_step(ids.shape[1] + t + 1 if sliced else None))
    full_ids = torch.cat([ids, cont], 1)
    full_mask = torch.cat([mask, torch.ones_like(cont, dtype=torch.bool)], 1)
    ref = _hf_logits(model, full_ids, full_mask)[:, ids.shape[1] - 1 : -1]
    torch.testing.assert_close(torch.stack(steps, 1), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_greedy_matches_hf_generate_token_for_token(tok, arch):
    model = _model(tok, arch, seed=3)
    ids, mask = _batch(tok)
    engine = StaticEngine(model, tok, eos_check_every=4)
    out = engine.generate(ids, mask, max_new_tokens=24, temperature=0.0, top_p=1.0)
    hf = model.generate(input_ids=ids, attention_mask=mask.long(), max_new_tokens=24, do_sample=False)
    ref = hf[:, ids.shape[1] :]
    assert out.completion_ids.shape == ref.shape
    assert torch.equal(out.completion_ids, ref)
    assert len(set(map(tuple, out.completion_ids.tolist()))) > 1  # rows differ: the test can tell them apart


def test_engine_satisfies_rollout_protocol_and_generation_shapes(tok):
    engine = StaticEngine(_model(tok, "llama"), tok, ignore_eos=True)
    assert isinstance(engine, RolloutEngine)
    ids, mask = _batch(tok)
    out = engine.generate(ids, mask, max_new_tokens=7, temperature=1.0, top_p=0.9)
    assert isinstance(out, Generation)
    assert out.completion_ids.shape == (len(PROMPTS), 7) and out.completion_mask.all()
    assert torch.equal(out.prompt_ids, ids) and torch.equal(out.prompt_mask, mask)
    assert out.completions == tok.batch_decode(out.completion_ids, skip_special_tokens=True)


def test_seeded_sampling_is_reproducible_and_seed_dependent(tok):
    engine = StaticEngine(_model(tok, "qwen2"), tok, ignore_eos=True)
    ids, mask = _batch(tok)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return engine.generate(ids, mask, max_new_tokens=16, temperature=1.0, top_p=0.95, generator=g).completion_ids

    first, again, other = run(5), run(5), run(6)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def _eos_heavy_model(tok):
    """A model whose EOS logit is raised so rows finish at different, early steps."""
    model = _model(tok, "llama", seed=1)
    with torch.no_grad():
        model.lm_head.weight[tok.eos_token_id] = model.lm_head.weight[tok.eos_token_id] + 0.5 * model.model.norm.weight
    return model


def test_rows_after_eos_are_padding_and_masked(tok):
    engine = StaticEngine(_eos_heavy_model(tok), tok, eos_check_every=3)
    ids, mask = _batch(tok, PROMPTS * 2)
    out = engine.generate(
        ids, mask, max_new_tokens=40, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0)
    )
    eos, pad = tok.eos_token_id, tok.pad_token_id
    finished_rows = 0
    for row_ids, row_mask, text in zip(out.completion_ids.tolist(), out.completion_mask.tolist(), out.completions):
        n = sum(row_mask)
        assert row_mask == [True] * n + [False] * (len(row_mask) - n)  # the mask is a prefix
        if eos in row_ids[:n]:
            finished_rows += 1
            assert row_ids.index(eos) == n - 1  # the first EOS is the last masked-in token
            assert all(t == pad for t in row_ids[n:])
        assert text == tok.decode(row_ids[:n], skip_special_tokens=True)
    assert finished_rows >= 2
    assert out.completion_mask[:, -1].any()  # trailing all-padding columns were dropped


def test_generation_stops_once_every_row_has_finished(tok):
    engine = StaticEngine(_eos_heavy_model(tok), tok, eos_check_every=2)
    ids, mask = _batch(tok)
    out = engine.generate(
        ids, mask, max_new_tokens=200, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(1)
    )
    assert (out.completion_ids == tok.eos_token_id).any(-1).all()
    assert out.completion_ids.shape[1] < 200


def test_ignore_eos_forces_full_length(tok):
    engine = StaticEngine(_eos_heavy_model(tok), tok, ignore_eos=True)
    ids, mask = _batch(tok)
    out = engine.generate(
        ids, mask, max_new_tokens=30, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(1)
    )
    assert out.completion_ids.shape == (len(PROMPTS), 30) and out.completion_mask.all()
    assert (out.completion_ids == tok.eos_token_id).any()


def test_engine_follows_in_place_weight_updates_without_copies(tok):
    model = _model(tok, "llama")
    engine = StaticEngine(model, tok, pack_weights=False)
    assert engine.decoder.shares_all_weights
    ids, mask = _batch(tok)
    engine.setup(len(PROMPTS), ids.shape[1] + 4)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5).add_(0.01)  # what an optimizer step does: in place
        got = engine.decoder.prefill(ids, mask, all_logits=True)
    torch.testing.assert_close(got[mask], _hf_logits(model, ids, mask)[mask], atol=1e-5, rtol=1e-5)


# -- packed weights (oneDNN, CPU) --------------------------------------------------------------------
@needs_packing
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_packed_weights_compute_what_hugging_face_computes(tok, arch):
    model = _model(tok, arch, seed=5)
    engine = StaticEngine(model, tok)  # the CPU default packs
    assert engine.decoder.pack_weights and not engine.decoder.shares_all_weights
    qkv = engine.decoder.layers[0].qkv
    assert len(qkv.weights) == 1 and qkv.weights[0].tensor.is_mkldnn  # q, k and v: one packed product
    ids, mask = _batch(tok)
    engine.setup(len(PROMPTS), 64)
    with torch.no_grad():
        got = engine.decoder.prefill(ids, mask, all_logits=True)
    torch.testing.assert_close(got[mask], _hf_logits(model, ids, mask)[mask], atol=1e-5, rtol=1e-5)
    greedy = engine.generate(ids, mask, max_new_tokens=12, temperature=0.0, top_p=1.0)
    plain = StaticEngine(model, tok, pack_weights=False).generate(
        ids, mask, max_new_tokens=12, temperature=0.0, top_p=1.0
    )
    assert torch.equal(greedy.completion_ids, plain.completion_ids)


def test_compile_serves_unpacked_weights_and_refuses_packed_ones(tok):
    model = _model(tok, "llama")
    assert not StaticEngine(model, tok, compile=True).decoder.pack_weights
    with pytest.raises(ValueError, match="pack_weights=False"):
        StaticEngine(model, tok, compile=True, pack_weights=True)


@needs_packing
def test_packed_weights_follow_in_place_changes_and_repack_only_what_changed(tok):
    model = _model(tok, "llama")
    engine = StaticEngine(model, tok)
    dec = engine.decoder
    ids, mask = _batch(tok)
    engine.setup(len(PROMPTS), 64)

    def logits():
        with torch.no_grad():
            return dec.prefill(ids, mask, all_logits=True)[mask]

    up, down = model.model.layers[0].mlp.up_proj.weight, model.model.layers[0].mlp.down_proj.weight
    gate_up = dec.layers[0].gate_up.weights[0]  # gate and up, concatenated and packed
    packed_up, packed_down = gate_up.tensor, dec.layers[0].w_down.tensor
    dec.refresh_weights()  # nothing changed: nothing is re-packed
    assert gate_up.tensor is packed_up
    with torch.no_grad():
        up.mul_(2.0)  # in place: the version counter moves
    stale = logits()
    dec.refresh_weights()
    assert gate_up.tensor is not packed_up and dec.layers[0].w_down.tensor is packed_down
    ref = _hf_logits(model, ids, mask)[mask]
    assert (stale - ref).abs().max() > 1e-3
    torch.testing.assert_close(logits(), ref, atol=1e-5, rtol=1e-5)
    # A change through .data leaves the version counter alone: the version check misses it, and the
    # sync after an optimizer step (trainable=True) re-derives every weight that requires grad.
    down.data.mul_(-1.0)
    dec.refresh_weights()
    assert dec.layers[0].w_down.tensor is packed_down
    engine.sync_weights()
    torch.testing.assert_close(logits(), _hf_logits(model, ids, mask)[mask], atol=1e-5, rtol=1e-5)


@needs_packing
def test_packed_bf16_snapshots_match_the_unpacked_bf16_decoder(tok):
    model = _model(tok, "qwen2", seed=2)  # with biases
    ids, mask = _batch(tok)
    out = {}
    for pack in (True, False):
        dec = StaticDecoder(model, dtype=torch.bfloat16, pack_weights=pack)
        dec.setup(len(PROMPTS), 64)
        with torch.no_grad():
            out[pack] = dec.prefill(ids, mask, all_logits=True)[mask].float()
    torch.testing.assert_close(out[True], out[False], atol=2e-2, rtol=2e-2)


def test_pack_weights_is_refused_where_onednn_cannot_serve_it(tok):
    with pytest.raises(ValueError, match="pack_weights"):
        StaticDecoder(_model(tok, "llama"), dtype=torch.float64, pack_weights=True)
    assert not StaticDecoder(_model(tok, "llama"), dtype=torch.float64).pack_weights  # the default falls back


def test_lora_adapter_is_merged_into_a_snapshot_refreshed_by_sync_weights(tok):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        _model(tok, "qwen2"),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False),
    ).eval()
    assert supports(model)
    engine = StaticEngine(model, tok)
    assert not engine.decoder.shares_all_weights
    ids, mask = _batch(tok)
    engine.setup(len(PROMPTS), 64)

    def engine_logits():
        with torch.no_grad():
            return engine.decoder.prefill(ids, mask, all_logits=True)[mask]

    torch.testing.assert_close(engine_logits(), _hf_logits(model, ids, mask)[mask], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(3.0)
    stale = engine_logits()
    engine.sync_weights()
    fresh = engine_logits()
    ref = _hf_logits(model, ids, mask)[mask]
    assert (stale - ref).abs().max() > 1e-3
    torch.testing.assert_close(fresh, ref, atol=1e-5, rtol=1e-5)


def test_compute_dtype_other_than_parameters_uses_refreshed_snapshot(tok):
    model = _model(tok, "llama")
    engine = StaticEngine(model, tok, dtype=torch.float64)
    ids, mask = _batch(tok)
    engine.setup(len(PROMPTS), 64)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(2.0)
    engine.sync_weights()
    with torch.no_grad():
        got = engine.decoder.prefill(ids, mask, all_logits=True)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got[mask].float(), _hf_logits(model, ids, mask)[mask], atol=1e-4, rtol=1e-4)


def test_unsupported_architectures_are_reported(tok):
    from transformers import AutoConfig, AutoModelForCausalLM

    gpt2 = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    assert not supports(gpt2)
    assert "model_type 'gpt2'" in unsupported_reason(gpt2)
    windowed = _model(tok, "qwen2", use_sliding_window=True, sliding_window=8, max_window_layers=0)
    assert not supports(windowed) and "sliding" in unsupported_reason(windowed)
    dynamic = _model(tok, "llama", rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    assert not supports(dynamic) and "dynamic" in unsupported_reason(dynamic)
    with pytest.raises(ValueError, match="cannot run this model"):
        StaticEngine(gpt2, tok)


def test_bad_arguments_raise_clear_errors(tok):
    engine = StaticEngine(_model(tok, "llama"), tok)
    ids, mask = _batch(tok)
    with pytest.raises(ValueError, match="left-padded"):
        engine.generate(ids, mask.flip(-1), max_new_tokens=2, temperature=1.0, top_p=1.0)
    with pytest.raises(ValueError, match="top_p"):
        engine.generate(ids, mask, max_new_tokens=2, temperature=1.0, top_p=0.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.generate(ids, mask, max_new_tokens=0, temperature=1.0, top_p=1.0)
    with pytest.raises(ValueError, match="use_cuda_graph"):
        StaticEngine(_model(tok, "llama"), tok, use_cuda_graph=True)


def test_setup_is_idempotent_and_buckets_lengths(tok):
    engine = StaticEngine(_model(tok, "llama"), tok, length_bucket=32)
    engine.setup(2, 40)
    cache = engine.decoder.k_cache
    assert cache.shape[3] == 64 and cache.shape[1] == 2
    engine.setup(2, 50)  # fits the bucket: same buffers
    assert engine.decoder.k_cache is cache
    engine.setup(3, 50)  # another batch size: new buffers
    assert engine.decoder.k_cache.shape[1] == 3


def test_top_p_sampling_never_leaves_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    tokens = sample_tokens(logits, 1.0, 0.75, g)
    assert set(tokens.tolist()) == {0, 1}  # 0.5 < 0.75 needs token 1 too; token 2 is outside
    freq = (tokens == 0).float().mean().item()
    assert abs(freq - 0.5 / 0.8) < 0.04
    full = sample_tokens(logits, 1.0, 1.0, g)
    assert abs((full == 3).float().mean().item() - 0.05) < 0.02


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1), keep=st.lists(st.booleans(), min_size=2, max_size=12), top_p=st.floats(0.05, 1.0)
)
def test_sampling_never_draws_a_token_of_probability_zero(seed, keep, top_p):
    assume(any(keep))
    g = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(200, len(keep), generator=g)
    allowed = torch.tensor(keep)
    logits[:, ~allowed] = float("-inf")
    tokens = sample_tokens(logits, 1.0, top_p, g)
    assert allowed[tokens].all()
    # Under top-p the drawn token is also inside its row's nucleus: the mass of strictly likelier tokens is < top_p.
    probs = torch.softmax(logits, -1)
    drawn = probs.gather(1, tokens[:, None])
    assert (torch.where(probs > drawn, probs, 0.0).sum(-1) < top_p + 1e-6).all()


def test_the_largest_uniform_draws_the_last_token_of_positive_probability(monkeypatch):
    """u = rand * total can round up to total; it must still land on a token that has mass."""
    logits = torch.tensor([[0.0, 1.0, 2.0, float("-inf"), float("-inf")]])
    largest = 1.0 - 2.0**-53
    monkeypatch.setattr(torch, "rand", lambda *a, dtype=None, device=None, **k: torch.full(a[0], largest, dtype=dtype))
    assert sample_tokens(logits, 1.0, 1.0).tolist() == [2]
    smallest = torch.tensor([[float("-inf"), 0.0, 1.0]])
    monkeypatch.setattr(torch, "rand", lambda *a, dtype=None, device=None, **k: torch.zeros(a[0], dtype=dtype))
    assert sample_tokens(smallest, 1.0, 1.0).tolist() == [1]  # u = 0 never draws the leading zero-mass token


def test_sampled_frequencies_follow_the_softmax():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0, -3.0]]).repeat(20000, 1)
    expected = torch.softmax(logits[0], -1)  # 0.236, 0.087, 0.032, 0.641, 0.004 (by hand: e^z / sum e^z)
    tokens = sample_tokens(logits, 1.0, 1.0, torch.Generator().manual_seed(1))
    freq = torch.bincount(tokens, minlength=5).float() / len(tokens)
    assert (freq - expected).abs().max() < 0.012  # 4 standard errors of the largest cell
    cooler = sample_tokens(logits, 0.5, 1.0, torch.Generator().manual_seed(2))
    assert abs((cooler == 3).float().mean().item() - torch.softmax(logits[0] / 0.5, -1)[3].item()) < 0.012


@gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_replay_matches_eager_decoding_on_cuda(tok):
    model = _model(tok, "qwen3").cuda()
    ids, mask = _batch(tok)
    graphed = StaticEngine(model, tok, use_cuda_graph=True)
    eager = StaticEngine(model, tok, use_cuda_graph=False)
    a = graphed.generate(ids, mask, max_new_tokens=32, temperature=0.0, top_p=1.0)
    b = eager.generate(ids, mask, max_new_tokens=32, temperature=0.0, top_p=1.0)
    assert graphed.capture_seconds > 0
    assert torch.equal(a.completion_ids, b.completion_ids)
    again = graphed.generate(ids, mask, max_new_tokens=32, temperature=0.0, top_p=1.0)  # replays, no recapture
    assert torch.equal(again.completion_ids, a.completion_ids)


@gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_decode_step_matches_plain_graph_on_cuda(tok):
    model = _model(tok, "llama").cuda()
    ids, mask = _batch(tok)
    plain = StaticEngine(model, tok).generate(ids, mask, max_new_tokens=16, temperature=0.0, top_p=1.0)
    compiled = StaticEngine(model, tok, compile=True).generate(ids, mask, max_new_tokens=16, temperature=0.0, top_p=1.0)
    assert torch.equal(plain.completion_ids, compiled.completion_ids)


# -- prompts once per group -------------------------------------------------------------------------
def _grouped_batch(tok, group=3):
    """Three distinct left-padded prompts, each repeated ``group`` times (a GRPO batch)."""
    return _batch(tok, [p for p in PROMPTS[:3] for _ in range(group)])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_shared_prefill_greedy_matches_hf_generate_token_for_token(tok, arch):
    model = _model(tok, arch, seed=3)
    ids, mask = _grouped_batch(tok)
    assert prompt_runs(ids, mask).tolist() == [3, 3, 3]
    out = StaticEngine(model, tok).generate(ids, mask, max_new_tokens=20, temperature=0.0, top_p=1.0)
    hf = model.generate(input_ids=ids, attention_mask=mask.long(), max_new_tokens=20, do_sample=False)
    assert torch.equal(out.completion_ids, hf[:, ids.shape[1] :])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_shared_prefill_samples_exactly_what_the_unshared_path_samples(tok, arch):
    model = _model(tok, arch, seed=2)
    ids, mask = _grouped_batch(tok, group=4)

    def run(share):
        engine = StaticEngine(model, tok, share_prompts=share)
        g = torch.Generator().manual_seed(11)
        return engine.generate(ids, mask, max_new_tokens=12, temperature=1.0, top_p=0.9, generator=g)

    shared, unshared = run(True), run(False)
    assert torch.equal(shared.completion_ids, unshared.completion_ids)
    assert torch.equal(shared.completion_mask, unshared.completion_mask)
    group = shared.completion_ids[:4]
    assert len(set(map(tuple, group.tolist()))) > 1  # rows of one group still sample independently


def test_shared_prefill_fills_the_cache_as_the_unshared_prefill_does(tok):
    model = _model(tok, "qwen3", seed=4)
    ids, mask = _grouped_batch(tok, group=2)
    runs = prompt_runs(ids, mask)
    shared, plain = StaticDecoder(model), StaticDecoder(model)
    for dec in (shared, plain):
        dec.setup(ids.shape[0], 64)
    with torch.no_grad():
        a = shared.prefill(ids, mask, repeats=runs)
        b = plain.prefill(ids, mask)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    p = ids.shape[1]
    torch.testing.assert_close(shared.k_cache[:, :, :, :p], plain.k_cache[:, :, :, :p], atol=1e-6, rtol=1e-6)
    assert torch.equal(shared.slot_valid, plain.slot_valid) and torch.equal(shared.positions, plain.positions)


def test_generation_outputs_are_ordinary_tensors_autograd_can_save(tok):
    """The loop runs under inference mode; what it returns must still feed the trainer's forward."""
    model = _model(tok, "llama")
    engine = StaticEngine(model, tok)
    ids, mask = _batch(tok)
    out = engine.generate(
        ids, mask, max_new_tokens=5, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0)
    )
    for tensor in (out.prompt_ids, out.prompt_mask, out.completion_ids, out.completion_mask):
        assert not tensor.is_inference()
    logits = model(input_ids=torch.cat([out.prompt_ids, out.completion_ids], 1)).logits  # embedding saves the ids
    logits.logsumexp(-1).sum().backward()
    assert model.model.embed_tokens.weight.grad is not None


def test_decode_steps_mark_the_slots_they_write_valid(tok):
    decoder = StaticDecoder(_model(tok, "llama"))
    ids, mask = _batch(tok)
    b, p = ids.shape
    decoder.setup(b, p + 4)
    with torch.no_grad():
        decoder.prefill(ids, mask)
        assert torch.equal(decoder.slot_valid[:, :p], mask) and not decoder.slot_valid[:, p:].any()
        decoder.decode_step(p + 1)
        decoder.decode_step(p + 2)
    assert decoder.slot_valid[:, p : p + 2].all() and not decoder.slot_valid[:, p + 2 :].any()
