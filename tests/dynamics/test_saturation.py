"""t_sat, Δ_sat and Δ*_post on synthetic curves whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weakreward.dynamics import (
    SaturationReport,
    held_out_at,
    saturation_gap,
    saturation_report,
    saturation_step,
    saturation_threshold,
)


def test_linear_ramp_saturates_where_it_reaches_99_percent_of_its_plateau():
    # r_t = t / 200 up to step 200, then 1.0: the threshold 0.99 is first reached at t = 198.
    rewards = [min(t / 200, 1.0) for t in range(1, 501)]
    assert saturation_step(rewards) == 198
    assert saturation_step(rewards, eps=0.5) == 100


def test_step_function_saturates_at_the_jump():
    rewards = [0.1] * 79 + [0.9] * 300  # the jump is at step 80
    assert saturation_step(rewards) == 80


def test_plateau_from_the_start_saturates_at_step_one_and_is_rapid():
    rep = saturation_report([0.7] * 300, {0: 0.3, 100: 0.3, 300: 0.3})
    assert rep.t_sat == 1
    assert rep.rapid is True
    assert rep.delta_sat == pytest.approx(0.0)
    assert rep.delta_post == pytest.approx(0.0)


def test_curve_still_rising_in_the_tail_has_not_saturated():
    rewards = [t / 300 for t in range(1, 301)]  # maximum at the very last step
    assert saturation_step(rewards, tail=50) is None
    rep = saturation_report(rewards)
    assert rep.t_sat is None and rep.rapid is None
    assert math.isnan(rep.delta_sat)
    assert any("never reached" in n for n in rep.notes)


def test_tail_zero_lets_the_last_step_saturate():
    assert saturation_step([0.1, 0.2, 0.3], tail=0) == 3


def test_maximum_inside_the_tail_still_sets_the_threshold():
    # r_max = 1.0 is at step 290 (inside the last 50); before it the curve only reaches 0.95.
    rewards = [0.95] * 289 + [1.0] + [0.95] * 10
    assert saturation_step(rewards) is None
    assert saturation_step(rewards, eps=0.95) == 1


def test_noisy_plateau_saturates_once_noise_reaches_the_threshold():
    rng = np.random.default_rng(0)
    rewards = np.concatenate([np.linspace(0.0, 0.8, 120), 0.8 + rng.normal(0, 0.01, 380)])
    t_sat = saturation_step(rewards)
    threshold = 0.99 * rewards.max()
    assert t_sat is not None
    assert rewards[t_sat - 1] >= threshold
    assert np.all(rewards[: t_sat - 1] < threshold)
    assert 100 <= t_sat <= 450


def test_all_nan_curve_gives_none_and_explains():
    rep = saturation_report([math.nan] * 200)
    assert saturation_step([math.nan] * 200) is None
    assert rep.t_sat is None and math.isnan(rep.r_max)
    assert any("NaN" in n for n in rep.notes)


def test_nan_steps_are_skipped_but_counted_in_T():
    rewards = [0.2, math.nan, 1.0, 1.0, math.nan, 1.0]
    assert saturation_step(rewards, tail=2) == 3
    assert saturation_step([math.nan, math.nan, 1.0, 1.0], tail=2) is None  # T_eff = 2, both NaN
    rep = saturation_report(rewards, tail=2)
    assert rep.num_steps == 6 and rep.t_eff == 4
    assert any("2 of 6 steps" in n for n in rep.notes)


def test_infinite_rewards_are_treated_as_missing():
    assert saturation_step([0.5, math.inf, 0.5, 0.5], tail=1) == 1


def test_short_run_is_explained_not_crashed_on():
    rep = saturation_report([0.1, 0.5, 0.9], {0: 0.1, 3: 0.2})
    assert rep.t_sat is None and rep.t_eff == -47
    assert any("too short" in n for n in rep.notes)
    assert saturation_step([], tail=0) is None


def test_negative_rewards_use_a_threshold_below_the_maximum():
    # rewards in [-1, -0.2]: eps*r_max = -0.198 is above the maximum and unreachable.
    rewards = [-1.0 + 0.8 * min(t / 100, 1.0) for t in range(1, 301)]
    assert saturation_threshold(-0.2) == pytest.approx(-0.202)
    t_sat = saturation_step(rewards)
    assert t_sat is not None and rewards[t_sat - 1] >= -0.202 > rewards[t_sat - 2]
    rep = saturation_report(rewards)
    assert any("r_max" in n and "<= 0" in n for n in rep.notes)


def test_zero_maximum_saturates_at_the_first_zero():
    assert saturation_step([-0.5, -0.1, 0.0, 0.0], tail=1) == 3


def test_deltas_on_a_ramp_with_known_values():
    # M rises linearly 0.2 -> 0.6 over steps 0..200 then stays flat: at t_sat = 198 the linear reading
    # is 0.2 + 0.4 * 198/200 = 0.596.
    rewards = [min(t / 200, 1.0) for t in range(1, 501)]
    heldout = {0: 0.2, 100: 0.4, 200: 0.6, 300: 0.62, 400: 0.61, 500: 0.6}
    rep = saturation_report(rewards, heldout)
    assert rep.t_sat == 198
    assert rep.m0 == pytest.approx(0.2)
    assert rep.m_sat == pytest.approx(0.596)
    assert rep.delta_sat == pytest.approx(0.396)
    assert rep.delta_post == pytest.approx(0.62 - 0.596)
    assert rep.rapid is False
    near = saturation_report(rewards, heldout, interpolation="nearest")
    assert near.m_sat == pytest.approx(0.6) and near.delta_post == pytest.approx(0.02)


def test_missing_step_zero_evaluation_uses_the_first_one_with_a_note():
    rep = saturation_report([1.0] * 100, {10: 0.3, 60: 0.5})
    assert rep.m0 == pytest.approx(0.3)
    assert any("step 0" in n for n in rep.notes)


def test_no_evaluations_leave_deltas_nan_with_a_note():
    rep = saturation_report([1.0] * 100)
    assert rep.t_sat == 1
    assert math.isnan(rep.delta_sat) and math.isnan(rep.delta_post)
    assert any("no held-out" in n for n in rep.notes)


def test_t_sat_after_the_last_evaluation_holds_the_last_value():
    rewards = [min(t / 150, 1.0) for t in range(1, 301)]
    rep = saturation_report(rewards, {0: 0.1, 50: 0.3})
    assert rep.m_sat == pytest.approx(0.3) and rep.delta_post == pytest.approx(0.0)
    assert any("after the last evaluation" in n for n in rep.notes)


def test_smoothing_moves_t_sat_back_from_a_noise_spike():
    rewards = [0.5] * 200
    rewards[100] = 0.52  # one noisy batch sets r_max: 0.5 is below 0.99 * 0.52
    assert saturation_step(rewards) == 101
    assert saturation_report(rewards, smooth=10).t_sat == 1


def test_gap_is_the_difference_of_pre_saturation_gains():
    big = saturation_report([min(t / 200, 1.0) for t in range(1, 401)], {0: 0.2, 400: 0.6})
    small = saturation_report([min(t / 20, 1.0) for t in range(1, 401)], {0: 0.2, 400: 0.6})
    assert saturation_gap(big, small) == pytest.approx(big.delta_sat - small.delta_sat)
    assert saturation_gap(big, small) > 0
    never = saturation_report([t / 400 for t in range(1, 401)], {0: 0.2, 400: 0.6})
    assert math.isnan(saturation_gap(big, never))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.5}, "eps"),
        ({"tail": -1}, "tail"),
        ({"rapid_before": 0}, "rapid_before"),
        ({"smooth": 0}, "smooth"),
        ({"interpolation": "cubic"}, "interpolation"),
    ],
)
def test_bad_parameters_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        saturation_report([0.5] * 10, **kwargs)


def test_report_table_and_dict_are_readable():
    rep = saturation_report([min(t / 10, 1.0) for t in range(1, 101)], {0: 0.1, 50: 0.2})
    table = rep.table()
    assert "t_sat" in table and str(rep.t_sat) in table and "rapid" in table
    d = rep.to_dict()
    assert d["t_sat"] == rep.t_sat and "rewards" not in d
    assert isinstance(rep, SaturationReport)
    assert saturation_report([math.nan] * 3).to_dict()["r_max"] is None


def test_held_out_at_holds_values_outside_the_measured_range():
    assert held_out_at([10, 20], [0.1, 0.3], 0) == pytest.approx(0.1)
    assert held_out_at([10, 20], [0.1, 0.3], 99) == pytest.approx(0.3)
    assert held_out_at([10, 20, 30], [0.1, math.nan, 0.3], 20) == pytest.approx(0.2)
    assert math.isnan(held_out_at([], [], 5))
    assert held_out_at([0, 10], [0.0, 1.0], 5, interpolation="nearest") == 0.0  # tie -> earlier


def _brute_t_sat(rewards: list[float], eps: float, tail: int) -> int | None:
    finite = [r for r in rewards if not math.isnan(r)]
    if not finite:
        return None
    r_max = max(finite)
    thr = eps * r_max if r_max > 0 else r_max - (1 - eps) * abs(r_max)
    for t in range(1, len(rewards) - tail + 1):
        if not math.isnan(rewards[t - 1]) and rewards[t - 1] >= thr:
            return t
    return None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-2, 2, allow_nan=False), st.just(math.nan)), max_size=60),
    st.floats(0.5, 1.0),
    st.integers(0, 10),
)
def test_saturation_step_matches_the_definition(rewards, eps, tail):
    assert saturation_step(rewards, eps=eps, tail=tail) == _brute_t_sat(rewards, eps, tail)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=80),
    st.dictionaries(st.integers(0, 80), st.floats(0, 1), min_size=1, max_size=8),
)
def test_post_saturation_residual_is_never_negative(rewards, heldout):
    rep = saturation_report(rewards, heldout, tail=1)
    if rep.t_sat is not None:
        assert rep.delta_post >= 0
        assert rep.delta_sat + rep.delta_post == pytest.approx(rep.m_post_max - rep.m0)
