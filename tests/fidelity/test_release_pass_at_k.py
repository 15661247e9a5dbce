"""Item 10: pass@k as the release's ``eval/pass_k_eval.py`` computes it.

A sample is correct when its reward equals 1 (not when it exceeds 0.5), k ∈ {1, 4, 8, 16} by default,
and a problem with fewer than k samples is left out of pass@k (problems may have different counts).
"""

from __future__ import annotations

import math

import pytest

from weakreward.grpo.evaluation import PAPER_KS, eval_metrics
from weakreward.probes.diversity import pass_at_k


def test_a_score_of_0_9_is_not_a_correct_sample():
    # c = 1 of n = 4: pass@1 = 1/4 (the > 0.5 rule counted c = 2: 0.5).
    assert eval_metrics([[1.0, 0.9, 0.0, 0.0]])["pass@1"] == 0.25
    assert eval_metrics([[1.0, 0.9, 0.0, 0.0]], threshold=0.5)["pass@1"] == 0.5


def test_default_ks_are_the_papers():
    assert PAPER_KS == (1, 4, 8, 16)
    scores = [[1.0] + [0.0] * 15, [1.0, 1.0] + [0.0] * 14]
    out = eval_metrics(scores)
    assert sorted(out) == ["avg@16", "pass@1", "pass@16", "pass@4", "pass@8"]
    # pass@4 by hand: 1 − C(15,4)/C(16,4) = 4/16 and 1 − C(14,4)/C(16,4) = 1 − 1001/1820.
    assert out["pass@4"] == pytest.approx((4 / 16 + 1 - 1001 / 1820) / 2)
    assert out["pass@16"] == 1.0


def test_problems_with_different_sample_counts():
    out = eval_metrics([[1.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    # pass@1 averages both (1/2 and 2/8); pass@4 and pass@8 only the problem with 8 samples.
    assert out["pass@1"] == pytest.approx((0.5 + 0.25) / 2)
    assert out["pass@4"] == pytest.approx(1 - math.comb(6, 4) / math.comb(8, 4))
    assert out["pass@8"] == 1.0 and "pass@16" not in out
    assert out["avg@8"] == pytest.approx((0.5 + 0.25) / 2)


def test_nan_is_never_correct_and_the_estimator_is_unbiased():
    assert eval_metrics([[float("nan"), 1.0]], ks=[1])["pass@1"] == 0.5
    assert pass_at_k(16, 3, 8) == pytest.approx(1 - math.comb(13, 8) / math.comb(16, 8))
