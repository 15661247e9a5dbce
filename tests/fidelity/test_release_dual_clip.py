"""Item 7: the release applies verl's dual-clip with c = 3 (``clip_ratio_c``) on every run."""

from __future__ import annotations

import pytest
import torch

from weakreward.grpo.config import paper_config
from weakreward.grpo.loss import policy_loss


def test_paper_config_has_dual_clip_3():
    assert paper_config().dual_clip == 3.0


def test_a_negative_advantage_with_a_large_ratio_is_capped_at_minus_c_a():
    # A = −1, ratio e^2 = 7.39: the PPO loss max(−A ρ, −A clip(ρ)) = 7.39, dual-clip caps it at −c·A = 3.
    lp = torch.tensor([[2.0]], requires_grad=True)
    mask = torch.ones(1, 1, dtype=torch.bool)
    out = policy_loss(lp, torch.zeros(1, 1), torch.tensor([-1.0]), mask, dual_clip=3.0)
    assert out.loss.item() == pytest.approx(3.0)
    out.loss.backward()
    assert lp.grad.item() == 0.0
    plain = policy_loss(lp.detach(), torch.zeros(1, 1), torch.tensor([-1.0]), mask)
    assert plain.loss.item() == pytest.approx(torch.e**2, rel=1e-6)
