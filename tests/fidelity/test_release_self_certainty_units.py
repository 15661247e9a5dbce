"""Item 4: self-certainty in the release's (and Intuitor's) units, ``logsumexp(z) − mean(z)``.

weakreward used to subtract a further ``log V`` (the KL divergence ``KL(U ‖ p)``). Group advantages are
the same either way; the saturation step is not, since its threshold ``ε·r̄_max`` is relative to the
curve's maximum. ``SelfCertainty(vocab_size=V)`` keeps the KL form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weakreward import Rollouts, SelfCertainty, token_stats_from_logits
from weakreward.dynamics.saturation import saturation_step
from weakreward.grpo.loss import group_advantages

QWEN_VOCAB = 151_936


def test_token_value_is_logsumexp_minus_mean():
    ts = token_stats_from_logits(torch.tensor([[[2.0, 0.0], [0.0, 0.0]]]), torch.tensor([[0, 0]]))
    # [2, 0]: log(e² + 1) − 1 = 1.126928...; uniform [0, 0]: log 2 (the KL would be 0 there).
    assert ts.self_certainty[0].tolist() == pytest.approx([math.log(math.e**2 + 1) - 1, math.log(2)], abs=1e-6)
    rollouts = Rollouts.build(["x"], token_stats=ts)
    release = SelfCertainty()(rollouts).scores[0]
    kl = SelfCertainty(vocab_size=2)(rollouts).scores[0]
    assert release == pytest.approx((math.log(math.e**2 + 1) - 1 + math.log(2)) / 2, abs=1e-6)
    assert release - kl == pytest.approx(math.log(2), abs=1e-12)


def test_group_advantages_do_not_depend_on_the_units():
    rewards = np.array([3.1, 2.7, 4.0, 3.3])
    shifted = rewards - math.log(QWEN_VOCAB)
    np.testing.assert_allclose(
        group_advantages(rewards, [0] * 4, ddof=1), group_advantages(shifted, [0] * 4, ddof=1), atol=1e-9
    )


def test_saturation_step_does_depend_on_the_units():
    # A synthetic self-certainty curve, in KL units 0.5·(1 − e^{−t/100}) over 500 steps (tail 50).
    t = np.arange(1, 501)
    kl = 0.5 * (1 - np.exp(-t / 100))
    release = kl + math.log(QWEN_VOCAB)
    # By hand: KL units reach 0.99·max at t = ⌈−100 ln(1 − 0.99(1 − e^{−5}))⌉ = 410; in the release's
    # units the threshold 0.99·(log V + max) lies only 0.99·max − 0.01·log V = 0.372 above log V:
    # t = ⌈−100 ln(1 − 0.372/0.5)⌉ = 137.
    assert saturation_step(kl) == 410
    assert saturation_step(release) == 137


def test_vocab_size_is_validated_naming_the_field():
    with pytest.raises(ValueError, match="vocab_size"):
        SelfCertainty(vocab_size=0)
    assert SelfCertainty().vocab_size is None and SelfCertainty(10).vocab_size == 10
