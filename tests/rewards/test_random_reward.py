"""RandomReward: Bernoulli(p) rate, determinism across instances and processes, resumable state."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward import MajorityVote, RandomReward


@settings(max_examples=20, deadline=None)
@given(p=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_empirical_rate_is_inside_a_binomial_band(p, seed):
    n = 4000
    reward = RandomReward(p=p, seed=seed)
    scores = np.concatenate([reward.score(["x"] * 1000).scores for _ in range(n // 1000)])
    assert set(np.unique(scores).tolist()) <= {0.0, 1.0}
    band = 5 * math.sqrt(p * (1 - p) / n) + 1e-12  # 5 sigma: a false failure ~1 in 3.5 million
    assert abs(scores.mean() - p) <= band


def test_same_seed_same_calls_same_scores_different_seed_differs():
    a, b, c = RandomReward(seed=3), RandomReward(seed=3), RandomReward(seed=4)
    for _ in range(3):
        sa, sb, sc = (r.score(["x"] * 64).scores for r in (a, b, c))
        np.testing.assert_array_equal(sa, sb)
        assert not np.array_equal(sa, sc)


def test_successive_calls_draw_fresh_scores():
    reward = RandomReward(seed=0)
    first, second = reward.score(["x"] * 64).scores, reward.score(["x"] * 64).scores
    assert not np.array_equal(first, second)
    assert reward.state_dict() == {"calls": 2}


def test_score_depends_on_position_not_text_or_batch_size():
    a, b = RandomReward(seed=9), RandomReward(seed=9)
    short = a.score(["x"] * 10).scores
    long = b.score([f"other {i}" for i in range(50)]).scores
    np.testing.assert_array_equal(short, long[:10])


def test_state_dict_resumes_the_stream():
    run = RandomReward(seed=11)
    run.score(["x"] * 8)
    state = run.state_dict()
    expected = run.score(["x"] * 8).scores
    resumed = RandomReward(seed=11)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(resumed.score(["x"] * 8).scores, expected)


def test_pickle_round_trip_carries_the_counter():
    reward = RandomReward(p=0.3, seed=5)
    reward.score(["x"] * 4)
    copy = pickle.loads(pickle.dumps(reward))
    assert copy.p == 0.3 and copy.seed == 5 and copy.state_dict() == {"calls": 1}
    np.testing.assert_array_equal(copy.score(["x"] * 32).scores, reward.score(["x"] * 32).scores)


def test_same_scores_in_another_process():
    code = "from weakreward import RandomReward; r = RandomReward(p=0.5, seed=123); r.score(['x']); print(r.score(['x'] * 40).scores.astype(int).tolist())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "77"}
    )
    here = RandomReward(p=0.5, seed=123)
    here.score(["x"])
    assert out.stdout.strip() == str(here.score(["x"] * 40).scores.astype(int).tolist())


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"p": 1.2}, "p"),
        ({"p": -0.1}, "p"),
        ({"p": float("nan")}, "p"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "1"}, "seed"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=field):
        RandomReward(**kwargs)


def test_bad_state_raises():
    with pytest.raises(ValueError, match="calls"):
        RandomReward().load_state_dict({"calls": -1})


def test_extreme_probabilities_and_composition():
    assert RandomReward(p=0.0).score(["x"] * 50).scores.sum() == 0
    assert RandomReward(p=1.0).score(["x"] * 50).scores.sum() == 50
    combined = RandomReward(p=1.0, seed=1) + MajorityVote()
    assert combined.state_dict()["random"] == {"calls": 0}
    combined.parts[1].verifier.close()
