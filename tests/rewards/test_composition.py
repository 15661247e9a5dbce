"""Composition laws: sums and scales agree with numpy, details are kept under each part's name."""

import math
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward import Clip, Gate, Reward, RewardResult, Rollouts, WeightedSum

finite = st.floats(-100, 100, allow_nan=False)


@dataclass(frozen=True, eq=False)
class Fixed(Reward):
    """Returns the scores stored in the rollouts' extras column ``name``."""

    name: str = "fixed"

    @property
    def needs(self):  # type: ignore[override]
        return frozenset({f"extras.{self.name}"})

    def compute(self, rollouts):
        scores = np.asarray(rollouts.extras[self.name], dtype=float)
        return RewardResult(scores, {"seen": [True] * len(rollouts)})


def rollouts_with(**columns):
    n = len(next(iter(columns.values())))
    return Rollouts.build(["c"] * n, **columns)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=20), finite, finite)
def test_weighted_sum_agrees_with_numpy(pairs, wa, wb):
    a, b = np.array(pairs).T
    r = rollouts_with(a=a.tolist(), b=b.tolist())
    reward = wa * Fixed("a") + wb * Fixed("b")
    np.testing.assert_allclose(reward(r).scores, wa * a + wb * b, rtol=1e-12, atol=1e-9)


@given(st.lists(finite, min_size=1, max_size=20), finite)
def test_bias_and_subtraction(values, c):
    r = rollouts_with(a=values)
    np.testing.assert_allclose((Fixed("a") + c)(r).scores, np.array(values) + c)
    np.testing.assert_allclose((c - Fixed("a"))(r).scores, c - np.array(values))
    np.testing.assert_allclose((-Fixed("a"))(r).scores, -np.array(values))


def test_sum_is_flattened_and_sum_builtin_works():
    a, b, c = Fixed("a"), Fixed("b"), Fixed("c")
    total = sum([a, b, c])
    assert isinstance(total, WeightedSum)
    assert total.parts == (a, b, c)
    assert total.weights == (1.0, 1.0, 1.0)


def test_nan_propagates_through_sum():
    r = rollouts_with(a=[1.0, math.nan], b=[1.0, 1.0])
    scores = (Fixed("a") + Fixed("b"))(r).scores
    assert scores[0] == 2.0 and math.isnan(scores[1])


def test_details_are_namespaced_and_repeated_names_do_not_collide():
    r = rollouts_with(a=[1.0, 0.0])
    result = (Fixed("a") + 2.0 * Fixed("a"))(r)
    assert result.details["a/score"] == [1.0, 0.0]
    assert result.details["a#2/score"] == [1.0, 0.0]
    assert result.details["a/seen"] == [True, True]
    np.testing.assert_array_equal(result.scores, [3.0, 0.0])


def test_needs_are_unioned_and_checked():
    reward = Fixed("a") + Fixed("b")
    assert reward.needs == {"extras.a", "extras.b"}
    with pytest.raises(ValueError, match="'b'"):
        reward(rollouts_with(a=[1.0]))


@given(st.lists(st.tuples(st.floats(-5, 5) | st.just(math.nan), finite), min_size=1, max_size=20), finite)
def test_gate_pays_reward_only_where_condition_passes(pairs, threshold):
    cond, value = (list(x) for x in zip(*pairs))
    r = rollouts_with(cond=cond, value=value)
    result = Gate(Fixed("cond"), Fixed("value"), threshold=threshold)(r)
    expected = [v if (not math.isnan(c) and c > threshold) else 0.0 for c, v in pairs]
    np.testing.assert_allclose(result.scores, expected)
    assert result.details["open"] == [(not math.isnan(c)) and c > threshold for c, _ in pairs]


@given(st.lists(finite, min_size=1, max_size=20), finite, finite)
def test_clip_agrees_with_numpy(values, x, y):
    low, high = min(x, y), max(x, y)
    r = rollouts_with(a=values)
    np.testing.assert_allclose(Clip(Fixed("a"), low, high)(r).scores, np.clip(values, low, high))


def test_clip_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="low"):
        Clip(Fixed("a"), low=1.0, high=0.0)


def test_weights_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        math.inf * Fixed("a")


def test_composites_pickle():
    reward = Gate(Fixed("a"), 0.5 * Fixed("b") + 1.0).clip(high=1.0)
    again = pickle.loads(pickle.dumps(reward))
    r = rollouts_with(a=[1.0, 0.0], b=[4.0, 4.0])
    np.testing.assert_array_equal(again(r).scores, reward(r).scores)


def test_result_log_flattens_scores_and_details():
    result = RewardResult(np.array([1.0, 0.0, math.nan]), {"reason": ["match", "mismatch", "timeout"], "x": [1, 2, 3]})
    log = result.log("r/")
    assert log["r/mean"] == 0.5
    assert log["r/nan_frac"] == pytest.approx(1 / 3)
    assert log["r/reason/timeout"] == pytest.approx(1 / 3)
    assert log["r/x"] == 2.0


def test_result_detail_length_must_match():
    with pytest.raises(ValueError, match="reason"):
        RewardResult(np.zeros(2), {"reason": ["a"]})


def test_reward_that_returns_wrong_length_is_caught():
    class Broken(Reward):
        name = "broken"

        def compute(self, rollouts):
            return RewardResult(np.zeros(len(rollouts) + 1))

    with pytest.raises(RuntimeError, match="broken"):
        Broken()(rollouts_with(a=[1.0]))
