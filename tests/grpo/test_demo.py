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


@pytest.mark.parametrize(("fast", "rollout", "autocast"), [(True, "bfloat16", "always"), (False, "policy", "never")])
def test_demo_uses_bf16_only_where_the_cpu_has_native_bf16(monkeypatch, fast, rollout, autocast) -> None:
    from weakreward.grpo import demo

    monkeypatch.setattr(demo, "cpu_has_fast_bf16", lambda: fast)
    cfg = demo.demo_config()
    assert (cfg.rollout_dtype, cfg.autocast) == (rollout, autocast)
