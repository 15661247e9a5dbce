"""The demo's plot leaves the user's matplotlib backend alone."""

from __future__ import annotations

import pytest

from weakreward.grpo.demo import plot_curves

matplotlib = pytest.importorskip("matplotlib")


def test_plot_curves_writes_a_png_without_switching_the_backend(tmp_path) -> None:
    before = matplotlib.get_backend()
    matplotlib.rcParams["backend"] = "svg"  # a backend the plot must not replace with Agg
    try:
        history = [
            {"step": s, "reward/mean": s / 4, "monitor/true/mean": s / 5, "completion_len/mean": 10} for s in (1, 2)
        ]
        out = plot_curves(history, tmp_path / "curves.png")
        assert out.read_bytes()[:4] == b"\x89PNG"
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.rcParams["backend"] = before


def test_demo_setting_takes_its_gradient_from_the_rollouts_own_forward(tmp_path, monkeypatch) -> None:
    import numpy as np

    from weakreward import GRPOTrainer
    from weakreward.grpo import demo
    from weakreward.models import char_tokenizer, tiny_llama
    from weakreward.rewards.base import Reward, RewardResult
    from weakreward.rollout.tape import ActivationTape

    class Length(Reward):
        def compute(self, rollouts):
            return RewardResult(np.array([float(len(c)) for c in rollouts.completions]))

    calls = []
    backward = ActivationTape.backward
    monkeypatch.setattr(ActivationTape, "backward", lambda self, *a: calls.append(1) or backward(self, *a))
    cfg = demo.demo_config(run_dir=str(tmp_path), steps=1, max_new_tokens=4, save_every=0)
    # float32 sampling and training (the trainer's CPU defaults), LoRA: the tape gives the gradient.
    assert cfg.rollout_dtype == "auto" and cfg.autocast == "cuda" and cfg.lora is not None
    tok = char_tokenizer()
    trainer = GRPOTrainer(tiny_llama(tok), Length(), [{"prompt": "1+1=", "answer": "2"}], tokenizer=tok, config=cfg)
    trainer.train()
    assert calls == [1]
