"""SaturationTracker: live saturation from the trainer's metric dicts, and the one-time warning."""

from __future__ import annotations

import logging
import math
import warnings

import pytest

from weakreward.dynamics import MemorisationWarning, SaturationTracker, default_heldout_key, saturation_report


def _feed(tracker, rewards, evals):
    for step, r in enumerate(rewards, start=1):
        tracker.on_step_end(None, step, {"step": step, "reward/mean": r, "loss": 0.1})
        if step in evals:
            tracker.on_evaluate(None, step, {"eval/avg@4": evals[step], "eval/pass@1": evals[step]})


def test_warns_once_when_reward_saturates_and_heldout_stops_rising(caplog):
    tracker = SaturationTracker(tail=10, patience=2)
    tracker.on_evaluate(None, 0, {"eval/avg@4": 0.30})
    rewards = [min(t / 10, 1.0) for t in range(1, 61)]
    evals = {s: 0.31 for s in range(10, 61, 10)}
    with caplog.at_level(logging.WARNING, logger="weakreward.dynamics"):
        with pytest.warns(MemorisationWarning, match="memorisation") as record:
            _feed(tracker, rewards, evals)
    assert len(record) == 1
    assert tracker.metric == "eval/avg@4"  # picked over pass@1
    assert tracker.saturated_at == 10 and tracker.memorising and tracker.warned
    assert any("saturated at step 10" in r.message for r in caplog.records)


def test_no_warning_while_heldout_keeps_rising():
    tracker = SaturationTracker(tail=10, patience=2)
    rewards = [min(t / 10, 1.0) for t in range(1, 61)]
    evals = {s: 0.3 + s / 100 for s in range(0, 61, 10)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.on_evaluate(None, 0, {"eval/avg@4": 0.3})
        _feed(tracker, rewards, evals)
    assert tracker.saturated_at == 10 and not tracker.memorising


def test_no_warning_while_reward_still_rising():
    tracker = SaturationTracker(tail=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _feed(tracker, [t / 100 for t in range(1, 61)], {s: 0.3 for s in range(10, 61, 10)})
    assert tracker.saturated_at is None and not tracker.memorising


def test_warn_false_tracks_without_warning():
    tracker = SaturationTracker(tail=5, patience=1, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _feed(tracker, [1.0] * 20, {5: 0.2, 10: 0.2, 20: 0.2})
    assert tracker.memorising and not tracker.warned


def test_report_matches_the_offline_analysis_and_nan_rewards_are_gaps():
    tracker = SaturationTracker(tail=5, warn=False)
    rewards = [0.1, None, 0.5, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    for step, r in enumerate(rewards, start=1):
        tracker.on_step_end(None, step, {"step": step, "reward/mean": r})
    curve = tracker.reward_curve()
    assert math.isnan(curve[1]) and len(curve) == len(rewards)
    offline = saturation_report([math.nan if r is None else r for r in rewards], tail=5)
    assert tracker.report().t_sat == offline.t_sat == 5


def test_falls_back_to_a_monitor_reward_without_evaluations():
    tracker = SaturationTracker(tail=2, warn=False)
    tracker.on_step_end(None, 1, {"step": 1, "reward/mean": 0.5, "monitor/true/mean": 0.2})
    assert tracker.metric == "monitor/true/mean" and tracker.heldout == {1: 0.2}


def test_resumed_run_replays_history():
    class FakeTrainer:
        history = [{"step": s, "reward/mean": 0.5} for s in range(1, 8)]

    tracker = SaturationTracker(tail=2, warn=False)
    tracker.on_train_begin(FakeTrainer())
    assert sorted(tracker.rewards) == list(range(1, 8)) and tracker.saturated_at == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eps": 0}, "eps"),
        ({"tail": -1}, "tail"),
        ({"patience": 0}, "patience"),
        ({"min_delta": -1}, "min_delta"),
        ({"smooth": 0}, "smooth"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SaturationTracker(**kwargs)


def test_default_heldout_key_prefers_accuracy_over_pass_at_k():
    assert default_heldout_key(["eval/pass@1", "eval/math500/avg@8"]) == "eval/math500/avg@8"
    assert default_heldout_key(["eval/pass@4", "eval/pass@1"]) == "eval/pass@1"
    assert default_heldout_key(["reward/mean", "loss"]) is None
