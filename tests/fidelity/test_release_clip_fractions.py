"""Item 9: the upper (ε-clip) and lower (dual-clip) clip fractions are logged separately, as verl's
``pg_clipfrac`` and ``pg_clipfrac_lower``."""

from __future__ import annotations

import math

import pytest
import torch

from weakreward.grpo.loss import policy_loss


def test_four_tokens_by_hand():
    # log-ratios and advantages per token:
    #   t0: ρ = e^0.5 = 1.65, A = +1 → ε-clip active (−A·1.2 > −A·1.65)
    #   t1: ρ = e^2 = 7.39, A = −1 → ε-clip not active (−A·ρ is the max) but dual-clip caps at 3
    #   t2: ρ = e^−0.5 = 0.61, A = −1 → ε-clip active (−A·0.8 > −A·0.61)
    #   t3: ρ = 1, A = +1 → nothing
    lp = torch.tensor([[0.5, 2.0, -0.5, 0.0]])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    # one completion per token, so each token has its own advantage
    out = policy_loss(lp.T, torch.zeros(4, 1), adv, torch.ones(4, 1, dtype=torch.bool), clip_eps=0.2, dual_clip=3.0)
    assert out.clip_frac.item() == pytest.approx(2 / 4)
    assert out.clip_frac_lower.item() == pytest.approx(1 / 4)
    assert math.exp(2.0) > 3.0


def test_no_dual_clip_means_no_lower_fraction():
    lp = torch.tensor([[2.0]])
    out = policy_loss(lp, torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1, dtype=torch.bool))
    assert out.clip_frac_lower.item() == 0.0
