"""Item 6: verl's ``low_var_kl``: ``d = log π_ref − log π`` clamped to ±20, then k3 to [−10, 10]."""

from __future__ import annotations

import math

import pytest
import torch

from weakreward.grpo.loss import kl_penalty


def test_value_at_d_5_is_clamped_to_10():
    # Unclamped: exp(5) − 5 − 1 = 142.41.
    assert math.exp(5) - 6 == pytest.approx(142.413, abs=1e-3)
    out = kl_penalty(torch.tensor([0.0]), torch.tensor([5.0]))
    assert out.tolist() == [10.0]


def test_no_gradient_beyond_the_clamp_and_the_usual_gradient_inside():
    lp = torch.tensor([0.0, 0.0], requires_grad=True)
    ref = torch.tensor([5.0, 0.5])
    kl_penalty(lp, ref).sum().backward()
    # Inside: d/dlp [exp(ref − lp) − (ref − lp) − 1] = 1 − exp(ref − lp) = 1 − e^0.5.
    assert lp.grad.tolist() == pytest.approx([0.0, 1 - math.exp(0.5)], abs=1e-6)


def test_small_log_ratios_are_untouched():
    d = torch.linspace(-2, 2, 9)
    out = kl_penalty(torch.zeros(9), d)
    assert out.tolist() == pytest.approx((torch.exp(d) - d - 1).tolist(), abs=1e-6)
    # d = −20 (the log-ratio clamp) gives e^−20 + 19 ≈ 19, clamped to 10 as well.
    assert kl_penalty(torch.tensor([0.0]), torch.tensor([-50.0])).tolist() == [10.0]
