"""GRPOTrainer end to end on a tiny random Llama: metrics, monitors, LoRA, crash safety, config, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from weakreward import GRPOConfig, GRPOTrainer, NoisyReward
from weakreward.grpo.checkpoint import latest_checkpoint, list_checkpoints
from weakreward.grpo.metrics import read_metrics
from weakreward.models import char_tokenizer, tiny_llama
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts

PROBLEMS = [
    {"prompt": "1+1=", "answer": "2"},
    {"prompt": [{"role": "user", "content": "2+3="}], "answer": "5", "level": 2},
    {"prompt": "4+4=", "answer": "8"},
]

DOCUMENTED_KEYS = {
    "step",
    "reward/mean",
    "reward/std",
    "advantage/mean",
    "advantage/std",
    "loss",
    "policy_loss",
    "kl",
    "clip_frac",
    "clip_frac_lower",
    "entropy",
    "self_certainty",
    "completion_len/mean",
    "completion_len/max",
    "frac_zero_std_groups",
    "rollout_s",
    "train_s",
    "tokens_per_s",
    "peak_mem_mb",
    "grad_norm",
    "lr",
}


class DigitShare(Reward):
    """Fraction of digit characters in the completion: varies across random completions."""

    name = "digits"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        scores = [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in rollouts.completions]
        return RewardResult(np.asarray(scores))


class HasDigit(Reward):
    """1 when the completion holds a digit, else 0 (a stand-in for a binary verifier)."""

    name = "has_digit"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        return RewardResult(np.asarray([float(any(ch.isdigit() for ch in c)) for c in rollouts.completions]))


def _config(tmp_path: Path, **kw) -> GRPOConfig:
    base = dict(
        steps=3,
        group_size=4,
        prompts_per_step=2,
        max_new_tokens=6,
        lr=1e-2,
        run_dir=str(tmp_path / "run"),
        progress=False,
    )
    base.update(kw)
    return GRPOConfig(**base)


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def test_three_step_run_writes_documented_metrics(tmp_path, tok):
    cfg = _config(tmp_path, eval_every=3, eval_samples=4)
    trainer = GRPOTrainer(
        tiny_llama(tok),
        DigitShare(),
        PROBLEMS,
        tokenizer=tok,
        config=cfg,
        eval_problems=PROBLEMS[:2],
        monitors={"true": HasDigit()},
    )
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # Step 0 is the evaluation before any update (M(0) of the saturation analysis); steps 1..3 train.
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    # pass@k for the paper's k in {1, 4, 8, 16} that 4 samples reach.
    assert set(rows[0]) == {"step", "eval/avg@4", "eval/pass@1", "eval/pass@4"}
    rows = rows[1:]
    for r in rows:
        missing = (DOCUMENTED_KEYS | {"monitor/true/mean"}) - set(r)
        assert not missing, missing
        assert 0 < r["completion_len/mean"] <= 6
        assert r["completion_len/max"] <= 6
        assert 0.0 <= r["frac_zero_std_groups"] <= 1.0
    assert {"eval/avg@4", "eval/pass@1", "eval/pass@4"} <= set(rows[-1])
    assert "eval/avg@4" not in rows[0]
    assert (tmp_path / "run" / "final").is_dir()
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [3]


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_monitor_under_noisy_reward_differs_as_expected(tmp_path, tok, flip):
    cfg = _config(tmp_path)
    trainer = GRPOTrainer(
        tiny_llama(tok),
        NoisyReward(HasDigit(), flip=flip, seed=1),
        PROBLEMS,
        tokenizer=tok,
        config=cfg,
        monitors={"true": HasDigit()},
    )
    rows = trainer.train()
    true = np.array([r["monitor/true/mean"] for r in rows])
    trained = np.array([r["reward/mean"] for r in rows])
    # flip=1 inverts every label, so the training reward is exactly 1 − true accuracy; flip=0 is the identity.
    expected = true if flip == 0.0 else 1.0 - true
    np.testing.assert_allclose(trained, expected)
    assert 0.0 < true.mean() < 1.0  # both outcomes occur, so the two curves really differ under flip=1


def test_lora_kl_is_exactly_zero_at_step_zero_and_only_adapters_change(tmp_path, tok):
    model = tiny_llama(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = _config(
        tmp_path, steps=2, lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}, beta=0.1, lr=5e-2
    )
    trainer = GRPOTrainer(model, DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    rows = trainer.train()
    assert rows[0]["kl"] == 0.0  # adapter B starts at zero: policy == reference bit for bit
    assert rows[1]["kl"] > 0.0  # after one update the adapter moved the policy
    assert trainer.ref_model is None  # no second copy of the weights
    changed = {n for n, p in trainer.model.named_parameters() if "lora_" in n and p.requires_grad}
    assert changed and all(p.requires_grad == ("lora_" in n) for n, p in trainer.model.named_parameters())
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)
    base = trainer.model.get_base_model()
    for name, tensor in base.state_dict().items():
        if "lora_" in name:
            continue
        key = name.replace(".base_layer", "")
        torch.testing.assert_close(tensor, before[key], rtol=0, atol=0)


def test_full_finetune_loads_reference_only_with_kl(tmp_path, tok):
    no_kl = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, beta=0.0))
    assert no_kl.ref_model is None
    with_kl = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, beta=0.01))
    assert with_kl.ref_model is not None
    assert not any(p.requires_grad for p in with_kl.ref_model.parameters())


def test_several_updates_and_micro_batches_run_and_move_ratio(tmp_path, tok):
    cfg = _config(tmp_path, steps=1, updates_per_batch=3, micro_batch_size=3, lr=5e-2, beta=0.01)
    trainer = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    row = trainer.train()[0]
    # The first update starts at ratio 1; later updates see the moved policy against the old log-probs.
    assert row["ratio_mean"] != 1.0
    assert np.isfinite(row["loss"])


def _first_step_grads(tmp_path, tok, **kw):
    """The gradients of step 1, read just before the optimizer step, and the autograd node names of the
    training forward's log-probs."""
    cfg = _config(tmp_path, **{"steps": 1, "beta": 0.01, "device": "cpu", **kw})
    trainer = GRPOTrainer(
        tiny_llama(tok, hidden_size=64, num_layers=2), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg
    )
    nodes: set[str] = set()
    stats = trainer._token_stats

    def spy(*args, **kwargs):
        out = stats(*args, **kwargs)
        stack, seen = [out.logprobs.grad_fn], set()
        while stack:
            fn = stack.pop()
            if fn is not None and fn not in seen:
                seen.add(fn)
                nodes.add(type(fn).__name__)
                stack.extend(f for f, _ in fn.next_functions)
        return out

    grads: dict[str, torch.Tensor] = {}

    def read_grads(optimizer, args, kwargs):
        grads.update({n: p.grad.clone() for n, p in trainer.trainable if p.grad is not None})

    trainer._token_stats = spy
    trainer.optimizer.register_step_pre_hook(read_grads)
    trainer.train_step(1)
    return grads, nodes


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8.0}], ids=["full", "lora"])
def test_cpu_linear_routes_the_training_products_to_onednn_with_the_same_gradients(tmp_path, tok, lora):
    from weakreward.kernels.linear import packed_linear_available

    # The training forward's products (full fine-tuning would otherwise take its gradient from the rollout).
    forward = {"lora": lora, "rollout_activations": "never"}
    routed, routed_nodes = _first_step_grads(tmp_path / "onednn", tok, **forward)
    plain, plain_nodes = _first_step_grads(tmp_path / "torch", tok, cpu_linear="torch", **forward)
    assert ("_OneDNNLinearBackward" in routed_nodes) == packed_linear_available()
    assert "_OneDNNLinearBackward" not in plain_nodes
    # The same rollout (same seed, same weights), so the same loss: gradients agree to float32 rounding.
    assert routed.keys() == plain.keys() and routed
    for name in plain:
        scale = plain[name].abs().max().clamp(min=1e-12)
        assert float((routed[name] - plain[name]).abs().max() / scale) < 1e-4, name


@pytest.mark.parametrize("beta", [0.0, 0.01])
def test_gradient_from_the_rollouts_activations_equals_the_training_forwards(tmp_path, tok, beta):
    from weakreward.rollout.tape import ActivationTape

    calls = []
    backward = ActivationTape.backward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return backward(self, *args, **kwargs)

    ActivationTape.backward = counted  # type: ignore[method-assign]
    try:
        tape, _ = _first_step_grads(tmp_path / "tape", tok, beta=beta)
    finally:
        ActivationTape.backward = backward  # type: ignore[method-assign]
    assert calls == [1]  # the default took the gradient from the rollout, once
    forward, nodes = _first_step_grads(tmp_path / "forward", tok, beta=beta, rollout_activations="never")
    assert nodes  # ... and "never" ran the training forward with autograd
    assert tape.keys() == forward.keys() and len(tape) == len(list(tiny_llama(tok, num_layers=2).parameters()))
    for name in forward:
        scale = forward[name].abs().max().clamp(min=1e-12)
        assert float((tape[name] - forward[name]).abs().max() / scale) < 1e-4, name


def test_problem_order_is_a_function_of_seed_and_step(tmp_path, tok):
    cfg = _config(tmp_path, prompts_per_step=2)
    a = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    seen = [p.answer for s in (1, 2, 3) for p in a.problems_for_step(s)]
    # Each pass over the 3 problems is a permutation of all of them.
    assert sorted(seen[:3]) == ["2", "5", "8"] and sorted(seen[3:6]) == ["2", "5", "8"]
    assert [p.answer for p in a.problems_for_step(2)] == seen[2:4]


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"lr": -1e-6}, "lr"),
        ({"group_size": 1}, "group_size"),
        ({"clip_eps": 0.2, "clip_eps_high": 0.1}, "clip_eps_high"),
        ({"learning_rate": 1e-6}, "learning_rate"),
        ({"dual_clip": 0.5}, "dual_clip"),
        ({"loss_agg": "sum"}, "loss_agg"),
    ],
)
def test_bad_config_error_names_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        GRPOConfig(**kwargs)
    assert field in str(info.value)


def test_paper_defaults():
    cfg = GRPOConfig()
    assert (cfg.group_size, cfg.lr, cfg.weight_decay, cfg.beta, cfg.kl_estimator) == (8, 1e-6, 0.01, 0.001, "k3")
    assert (cfg.clip_eps, cfg.clip_eps_high, cfg.temperature, cfg.grad_clip, cfg.lr_schedule) == (
        0.2,
        None,
        1.0,
        1.0,
        "constant",
    )
    assert all(f.description for f in GRPOConfig.model_fields.values())


# -- crash safety -------------------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from weakreward import GRPOConfig, GRPOTrainer
    from weakreward.models import char_tokenizer, tiny_llama
    from weakreward.rewards.base import Reward, RewardResult

    class DigitShare(Reward):
        name = "digits"
        def compute(self, rollouts):
            return RewardResult(np.asarray([sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in rollouts.completions]))

    tok = char_tokenizer()
    cfg = GRPOConfig(steps=int(sys.argv[2]), group_size=4, prompts_per_step=2, max_new_tokens=6, lr=1e-2, save_every=1,
                     run_dir=sys.argv[1], progress=False, resume="latest")
    problems = [{"prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(5)]
    GRPOTrainer(tiny_llama(tok), DigitShare(), problems, tokenizer=tok, config=cfg).train()
    """
)


def test_sigkill_mid_run_then_resume_latest_continues(tmp_path):
    run_dir = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run_dir), "200"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(read_metrics(metrics)) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    assert ckpt is not None
    resumed_from = int(ckpt.name.split("-")[1])
    assert resumed_from >= 2

    target = resumed_from + 2
    done = subprocess.run(
        [sys.executable, str(script), str(run_dir), str(target)], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = metrics.read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]  # every line parses
    assert steps == list(range(1, target + 1))  # no duplicate, no gap
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == target
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp")]


# The same run as CHILD, with a fixed weight init and full fine-tuning; argv: run_dir, steps.
CHILD_EXACT = CHILD.replace("tiny_llama(tok)", "tiny_llama(tok, seed=0)").replace(
    'resume="latest")', 'resume="latest", lora=None, seed=3)'
)
TIMINGS = {"rollout_s", "train_s", "tokens_per_s", "peak_mem_mb"}


def test_sigkilled_run_resumed_to_four_steps_equals_an_uninterrupted_four_step_run(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD_EXACT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    done = subprocess.run([sys.executable, str(script), str(straight), "4"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    proc = subprocess.Popen(
        [sys.executable, str(script), str(crashed), "200"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ckpt = latest_checkpoint(crashed / "checkpoints")
            if ckpt is not None and int(ckpt.name.split("-")[1]) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    resumed_from = int(latest_checkpoint(crashed / "checkpoints").name.split("-")[1])
    assert 2 <= resumed_from < 4
    done = subprocess.run([sys.executable, str(script), str(crashed), "4"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    def rows(run: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in TIMINGS} for r in read_metrics(run / "metrics.jsonl")]

    assert [r["step"] for r in rows(crashed)] == [1, 2, 3, 4]
    assert rows(crashed) == rows(straight)
    from safetensors.torch import load_file

    a = load_file(straight / "final" / "model.safetensors")
    b = load_file(crashed / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_a_fresh_run_refuses_an_existing_run_dir_and_says_how_to_resume_or_overwrite(tmp_path, tok):
    GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, steps=1)).train()
    again = GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, steps=1))
    with pytest.raises(FileExistsError, match="resume='latest'.*overwrite=True"):
        again.train()
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [1]  # nothing deleted
    cfg = _config(tmp_path, steps=2, overwrite=True)
    rows = GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=cfg).train()
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_eval_every_without_eval_problems_is_an_error(tmp_path, tok):
    with pytest.raises(ValueError, match="eval_every = 2 but there are no eval_problems"):
        GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=_config(tmp_path, eval_every=2))


def test_resume_restores_step_weights_and_reward_state(tmp_path, tok):
    cfg = _config(tmp_path, steps=2, save_every=1)
    noisy = NoisyReward(HasDigit(), flip=0.3, seed=2)
    first = GRPOTrainer(tiny_llama(tok), noisy, PROBLEMS, tokenizer=tok, config=cfg)
    first.train()
    weights = {n: p.detach().clone() for n, p in first.trainable}
    state = noisy.state_dict()
    again = NoisyReward(HasDigit(), flip=0.3, seed=2)
    second = GRPOTrainer(
        tiny_llama(tok), again, PROBLEMS, tokenizer=tok, config=_config(tmp_path, steps=2, resume="latest")
    )
    assert second.train() == []  # nothing left to do
    assert second.step == 2
    assert again.state_dict() == state
    for n, p in second.trainable:
        torch.testing.assert_close(p.detach(), weights[n], rtol=0, atol=0)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_train_runs_a_yaml_recipe(tmp_path, tok, capsys):
    from weakreward.cli import main

    model_dir = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(p) for p in PROBLEMS if isinstance(p["prompt"], str)))
    (tmp_path / "cfg.yaml").write_text(
        textwrap.dedent(f"""
        model: {model_dir}
        reward: {{type: NoisyReward, inner: {{type: ExactMatch}}, flip: 0.5}}
        monitors: {{"true": {{type: ExactMatch}}}}
        train_data: {{path: train.jsonl}}
        grpo: {{steps: 2, group_size: 2, prompts_per_step: 2, max_new_tokens: 4, lr: 1.0e-3, run_dir: {tmp_path / "out"}, progress: false}}
    """)
    )
    assert main(["train", str(tmp_path / "cfg.yaml")]) == 0
    rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and "monitor/true/mean" in rows[0]

    (tmp_path / "bad.yaml").write_text(
        f"model: {model_dir}\nreward: {{type: ExactMatch}}\ntrain_data: {{path: train.jsonl}}\ngrpo: {{lr: -1}}\n"
    )
    assert main(["train", str(tmp_path / "bad.yaml")]) == 2
    assert "grpo.lr" in capsys.readouterr().err


def test_lora_layers_adapts_only_the_top_layers(tmp_path, tok):
    cfg = _config(tmp_path, steps=1, lora={"r": 2, "layers": 1}, beta=0.0)
    trainer = GRPOTrainer(tiny_llama(tok, num_layers=3), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    adapted = {n.split(".layers.")[1].split(".")[0] for n, _ in trainer.trainable}
    assert adapted == {"2"}
    with pytest.raises(ValidationError, match="layers"):
        GRPOConfig(lora={"layers": 0})


# -- schedules, prompts and problem types, checked by value ----------------------------------------
@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # steps=6, warmup_steps=2: warm-up (k + 1) / 2 for k < 2, then progress p = (k − 2) / 4.
        ("constant", [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]),  # 1 − p
        # (1 + cos(π p)) / 2: cos(π/4) = 0.70711 → 0.85355; cos(3π/4) → 0.14645
        ("cosine", [0.5, 1.0, 1.0, 0.853553, 0.5, 0.146447]),
    ],
)
def test_learning_rate_schedules_by_value(tmp_path, tok, schedule, expected):
    cfg = _config(tmp_path, steps=6, warmup_steps=2, lr=1e-2, lr_schedule=schedule)
    trainer = GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=cfg)
    got = []
    for _ in range(6):
        got.append(trainer.scheduler.get_last_lr()[0] / 1e-2)
        trainer.optimizer.step()  # no gradients: a no-op that keeps the scheduler's call order
        trainer.scheduler.step()
    assert got == pytest.approx(expected, abs=1e-6)


CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+3="}]


@pytest.mark.parametrize(
    ("mode", "prompt", "text"),
    [
        ("auto", "2+3=", "2+3="),  # text prompts stay raw
        (
            "auto",
            CHAT,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\n2+3=<|im_end|>\n<|im_start|>assistant\n",
        ),
        ("always", "2+3=", "<|im_start|>user\n2+3=<|im_end|>\n<|im_start|>assistant\n"),
        ("never", CHAT, "be brief\n2+3="),  # the messages' contents joined by newlines
    ],
)
def test_chat_template_modes_render_the_prompt(tmp_path, tok, mode, prompt, text):
    cfg = _config(tmp_path, chat_template=mode)
    trainer = GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=cfg)
    assert tok.decode(trainer._prompt_ids(prompt)) == text


def test_max_prompt_tokens_keeps_the_last_tokens(tmp_path, tok):
    cfg = _config(tmp_path, max_prompt_tokens=3)
    trainer = GRPOTrainer(tiny_llama(tok), HasDigit(), PROBLEMS, tokenizer=tok, config=cfg)
    assert tok.decode(trainer._prompt_ids("12+34=")) == "34="  # one character per token, cut from the left


def test_dataclass_and_pydantic_problems_become_problems_with_their_extras(tmp_path, tok):
    import dataclasses

    from pydantic import BaseModel

    from weakreward import Problem

    @dataclasses.dataclass
    class Row:
        prompt: str
        answer: int
        source: str

    class Item(BaseModel):
        prompt: str
        answer: str
        source: str

    cfg = _config(tmp_path)
    trainer = GRPOTrainer(
        tiny_llama(tok),
        HasDigit(),
        [Row("1+3=", 4, "dc"), Item(prompt="2+2=", answer="4", source="pd")],
        tokenizer=tok,
        config=cfg,
    )
    assert trainer.train_problems == [
        Problem("1+3=", "4", meta={"source": "dc"}),  # a numeric label becomes the reference "4"
        Problem("2+2=", "4", meta={"source": "pd"}),
    ]
    assert [p.extras for p in trainer.train_problems] == [{"source": "dc"}, {"source": "pd"}]


@pytest.mark.parametrize("cpu_linear", ["onednn", "torch"])
def test_the_hf_engine_follows_cpu_linear(tmp_path, tok, cpu_linear):
    cfg = _config(tmp_path, engine="hf", cpu_linear=cpu_linear)
    trainer = GRPOTrainer(tiny_llama(tok), DigitShare(), PROBLEMS, tokenizer=tok, config=cfg)
    assert trainer.engine.cpu_linear == cpu_linear
