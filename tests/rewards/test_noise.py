"""NoisyReward and NoiseCorrected: rates, levels, reproducibility, state, validation."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weakreward import NoiseCorrected, NoisyReward, Reward, RewardResult, Rollouts
from weakreward.rewards.hashing import normals as _normals
from weakreward.rewards.hashing import uniforms as _uniforms


class Column(Reward):
    """Scores read from the extras column ``clean`` (a test double with a known clean reward)."""

    name = "column"
    needs = frozenset({"extras.clean"})

    def compute(self, rollouts: Rollouts) -> RewardResult:
        values = np.asarray(rollouts.extras["clean"], dtype=np.float64)
        return RewardResult(values, {"seen": [True] * len(values)})


def batch(clean, prompts=None) -> Rollouts:
    clean = list(clean)
    prompts = prompts if prompts is not None else [f"p{i}" for i in range(len(clean))]
    return Rollouts.build(["c"] * len(clean), prompts=prompts, clean=clean)


def band(n: int, p: float, sigmas: float = 5.0) -> float:
    """Half-width of a 5-sigma binomial band for an empirical rate over n trials (never flakes in practice:
    the seeds are fixed, so each test is deterministic; the band says the rate is right, not lucky)."""
    return sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1.0 / n


# -- rates -------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(p=st.floats(0.0, 1.0), seed=st.integers(0, 2**31), level=st.sampled_from(["sample", "prompt"]))
def test_symmetric_flip_rate_within_binomial_band(p, seed, level):
    n = 4000
    clean = np.tile([0.0, 1.0], n // 2)
    result = NoisyReward(Column(), flip=p, seed=seed, level=level)(batch(clean))
    flipped = np.asarray(result.details["flipped"])
    assert abs(flipped.mean() - p) <= band(n, p)
    # a flip is exactly a label change
    assert np.array_equal(flipped, result.scores != clean)


@settings(max_examples=15, deadline=None)
@given(rho0=st.floats(0.0, 1.0), rho1=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_false_positive_and_false_negative_rates_separately(rho0, rho1, seed):
    n = 3000
    clean = np.concatenate([np.zeros(n), np.ones(n)])
    result = NoisyReward(Column(), false_positive=rho0, false_negative=rho1, seed=seed)(batch(clean))
    noisy = result.scores
    assert set(np.unique(noisy)) <= {0.0, 1.0}
    assert abs(noisy[:n].mean() - rho0) <= band(n, rho0)  # P(1 | clean 0)
    assert abs((1 - noisy[n:]).mean() - rho1) <= band(n, rho1)  # P(0 | clean 1)


def test_unset_rate_is_zero():
    clean = np.concatenate([np.zeros(500), np.ones(500)])
    result = NoisyReward(Column(), false_positive=0.5, seed=1)(batch(clean))
    assert (result.scores[500:] == 1.0).all()  # no false negatives
    assert 0 < result.scores[:500].mean() < 1


@settings(max_examples=10, deadline=None)
@given(sigma=st.floats(0.01, 5.0), seed=st.integers(0, 2**31))
def test_gaussian_sigma_matches_empirical_std(sigma, seed):
    n = 5000
    clean = np.linspace(0, 1, n)
    result = NoisyReward(Column(), gaussian=sigma, seed=seed)(batch(clean))
    noise = result.scores - clean
    np.testing.assert_allclose(noise, result.details["noise"])
    # std of a sample std is σ/sqrt(2n); mean has std σ/sqrt(n)
    assert abs(noise.std() - sigma) <= 5 * sigma / math.sqrt(2 * n)
    assert abs(noise.mean()) <= 5 * sigma / math.sqrt(n)
    assert "flipped" not in result.details


def test_hashed_normals_are_standard_normal_in_the_tails():
    z = _normals(0, [str(i) for i in range(20000)])
    assert np.isfinite(z).all()
    # P(|Z| > 2) = 0.0455; a 5-sigma band around it
    assert abs((np.abs(z) > 2).mean() - 0.0455) <= band(20000, 0.0455)


def test_uniforms_are_strictly_inside_the_unit_interval():
    u = _uniforms(3, "flip", [str(i) for i in range(10000)])
    assert (u > 0).all() and (u < 1).all()
    assert abs(u.mean() - 0.5) <= 5 * math.sqrt(1 / 12 / 10000)


# -- levels ------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**31), calls=st.integers(2, 4))
def test_prompt_level_noise_is_constant_per_prompt_across_calls(p, seed, calls):
    prompts = [f"q{i % 20}" for i in range(200)]  # 20 prompts, 10 completions each, interleaved
    clean = [float(i % 3 == 0) for i in range(200)]
    reward = NoisyReward(Column(), flip=p, level="prompt", seed=seed)
    per_prompt: dict[str, set[bool]] = {}
    for _ in range(calls):
        result = reward(batch(clean, prompts))
        for prompt, flipped in zip(prompts, result.details["flipped"]):
            per_prompt.setdefault(prompt, set()).add(flipped)
    assert all(len(v) == 1 for v in per_prompt.values())
    # and a fresh reward with the same seed, seeing the prompts in another order, agrees
    shuffled = list(reversed(range(200)))
    other = NoisyReward(Column(), flip=p, level="prompt", seed=seed)(
        batch([clean[i] for i in shuffled], [prompts[i] for i in shuffled])
    )
    for i, flipped in zip(shuffled, other.details["flipped"]):
        assert {flipped} == per_prompt[prompts[i]]


def test_prompt_level_gaussian_is_one_offset_per_prompt():
    prompts = ["a", "b", "a", "b", "a"]
    result = NoisyReward(Column(), gaussian=1.0, level="prompt", seed=4)(batch([0.0] * 5, prompts))
    noise = result.details["noise"]
    assert noise[0] == noise[2] == noise[4] and noise[1] == noise[3] and noise[0] != noise[1]


def test_prompt_level_keys_chat_messages_by_content():
    a = [[{"role": "user", "content": "x"}]] * 2
    b = [[{"content": "x", "role": "user"}]] * 2  # same message, other key order
    r1 = NoisyReward(Column(), gaussian=1.0, level="prompt", seed=0)(batch([0.0, 1.0], a))
    r2 = NoisyReward(Column(), gaussian=1.0, level="prompt", seed=0)(batch([0.0, 1.0], b))
    assert r1.details["noise"] == r2.details["noise"]


def test_sample_level_gives_fresh_noise_on_each_call():
    reward = NoisyReward(Column(), flip=0.5, seed=0)
    first = reward(batch([1.0] * 200)).details["flipped"]
    second = reward(batch([1.0] * 200)).details["flipped"]
    assert first != second


def test_different_seeds_give_different_noise():
    a = NoisyReward(Column(), flip=0.5, seed=0)(batch([1.0] * 200)).details["flipped"]
    b = NoisyReward(Column(), flip=0.5, seed=1)(batch([1.0] * 200)).details["flipped"]
    assert a != b


# -- reproducibility and state ---------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from weakreward import NoisyReward, Reward, RewardResult, Rollouts

    class Column(Reward):
        name = "column"
        def compute(self, rollouts):
            return RewardResult(np.asarray(rollouts.extras["clean"], dtype=float))

    out = {}
    for level in ("sample", "prompt"):
        for kind in ({"flip": 0.3}, {"false_positive": 0.2, "false_negative": 0.4}, {"gaussian": 0.7}):
            r = NoisyReward(Column(), level=level, seed=1234, **kind)
            batch = Rollouts.build(["c"] * 64, prompts=[f"p{i % 8}" for i in range(64)],
                                   clean=[float(i % 2) for i in range(64)])
            out[level + str(sorted(kind))] = [r(batch).scores.tolist() for _ in range(3)]
    json.dump(out, sys.stdout)
    """
)


def test_same_seed_gives_same_scores_in_another_process():
    # a different str-hash salt in the child must not matter
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    theirs = json.loads(child.stdout)
    ours = {}
    for level in ("sample", "prompt"):
        for kind in ({"flip": 0.3}, {"false_positive": 0.2, "false_negative": 0.4}, {"gaussian": 0.7}):
            r = NoisyReward(Column(), level=level, seed=1234, **kind)
            b = Rollouts.build(
                ["c"] * 64, prompts=[f"p{i % 8}" for i in range(64)], clean=[float(i % 2) for i in range(64)]
            )
            ours[level + str(sorted(kind))] = [r(b).scores.tolist() for _ in range(3)]
    assert theirs == ours
    # the runs are not trivially equal: the sample-level stream changes between calls
    assert ours["sample['flip']"][0] != ours["sample['flip']"][1]


def test_state_dict_resumes_the_same_stream():
    b = batch([float(i % 2) for i in range(100)])
    straight = NoisyReward(Column(), flip=0.4, seed=9)
    expected = [straight(b).scores.tolist() for _ in range(4)]

    first = NoisyReward(Column(), flip=0.4, seed=9)
    got = [first(b).scores.tolist() for _ in range(2)]
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = NoisyReward(Column(), flip=0.4, seed=9)
    resumed.load_state_dict(state)
    got += [resumed(b).scores.tolist() for _ in range(2)]
    assert got == expected
    assert state == {"calls": 2, "inner": {}}


def test_state_dict_forwards_to_the_inner_reward():
    from weakreward import RandomReward

    inner = RandomReward(p=0.5, seed=3)
    reward = NoiseCorrected(NoisyReward(inner, flip=0.1), false_positive=0.1, false_negative=0.1)
    reward.score(["a", "b"])
    assert reward.state_dict() == {"inner": {"calls": 1, "inner": {"calls": 1}}}
    reward.load_state_dict({"inner": {"calls": 5, "inner": {"calls": 7}}})
    assert inner.state_dict() == {"calls": 7}


@pytest.mark.parametrize("bad", [{"calls": -1}, {"calls": 1.5}, {}])
def test_load_state_dict_rejects_a_bad_counter(bad):
    with pytest.raises(ValueError, match="calls"):
        NoisyReward(Column(), flip=0.1).load_state_dict(bad)


def test_pickle_round_trip_keeps_config_and_stream():
    reward = NoisyReward(Column(), false_positive=0.3, false_negative=0.1, level="prompt", seed=5)
    b = batch([0.0, 1.0] * 50)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.name == reward.name == "noisy(column,fp=0.3,fn=0.1,prompt)"
    assert clone(b).scores.tolist() == reward(b).scores.tolist()
    corrected = pickle.loads(pickle.dumps(NoiseCorrected(reward, false_positive=0.3, false_negative=0.1)))
    assert corrected.name == "corrected(noisy(column,fp=0.3,fn=0.1,prompt),fp=0.3,fn=0.1)"


# -- scores and details -----------------------------------------------------------------------------


def test_nan_inner_scores_stay_nan_and_are_not_flipped():
    result = NoisyReward(Column(), flip=1.0)(batch([math.nan, 1.0, 0.0]))
    assert math.isnan(result.scores[0]) and result.scores[1:].tolist() == [0.0, 1.0]
    assert result.details["flipped"] == [False, True, True]
    gauss = NoisyReward(Column(), gaussian=1.0)(batch([math.nan, 0.0]))
    assert math.isnan(gauss.scores[0]) and not math.isnan(gauss.scores[1])


def test_non_binary_scores_are_read_as_labels_above_one_half():
    clean = [0.2, 0.5, 0.7, 2.0, -1.0]
    result = NoisyReward(Column(), flip=1.0)(batch(clean))
    # r > 0.5 is positive -> flipped to 0; otherwise negative -> flipped to 1
    assert result.scores.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    untouched = NoisyReward(Column(), flip=0.0)(batch(clean))
    assert untouched.scores.tolist() == clean


def test_details_hold_clean_scores_and_namespaced_inner_details():
    result = NoisyReward(Column(), flip=0.5, seed=2)(batch([0.0, 1.0]))
    assert result.details["clean"] == [0.0, 1.0]
    assert result.details["column/seen"] == [True, True]
    assert set(result.details) == {"clean", "flipped", "column/seen"}
    assert "train/flipped" in result.log("train/")


def test_needs_and_missing_column_are_those_of_the_inner():
    reward = NoisyReward(Column(), flip=0.2)
    assert reward.needs == frozenset({"extras.clean"})
    with pytest.raises(ValueError, match="clean"):
        reward.score(["a"])


def test_composes_with_other_rewards():
    reward = 0.5 * NoisyReward(Column(), flip=1.0) + 0.5
    assert reward(batch([1.0, 0.0])).scores.tolist() == [0.5, 1.0]


# -- NoiseCorrected ---------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    rho0=st.floats(0.0, 0.45),
    rho1=st.floats(0.0, 0.45),
    clean_mean=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31),
)
def test_noise_corrected_mean_is_unbiased_for_the_clean_mean(rho0, rho1, clean_mean, seed):
    n = 6000
    rng = np.random.default_rng(seed)
    clean = (rng.random(n) < clean_mean).astype(float)
    noisy = NoisyReward(Column(), false_positive=rho0, false_negative=rho1, seed=seed)
    corrected = NoiseCorrected(noisy, false_positive=rho0, false_negative=rho1)(batch(clean))
    est = corrected.scores.mean()
    # the noisy mean is biased towards rho0 + (1 - rho0 - rho1) * mean; the corrected one is not.
    # Var(r̂) <= 1 / (4 (1 - rho0 - rho1)^2) per sample (r̂ takes two values 1/(1-rho0-rho1) apart)
    sd = 0.5 / (1 - rho0 - rho1) / math.sqrt(n)
    assert abs(est - clean.mean()) <= 5 * sd + 1e-9
    raw_mean = np.mean(corrected.details["uncorrected"])
    assert abs(raw_mean - (rho0 + (1 - rho0 - rho1) * clean.mean())) <= 5 * 0.5 / math.sqrt(n) + 1e-9


def test_noise_corrected_formula_and_nan():
    result = NoiseCorrected(Column(), false_positive=0.1, false_negative=0.3)(batch([0.0, 1.0, math.nan, 0.5]))
    np.testing.assert_allclose(result.scores[:2], [-0.1 / 0.6, 0.9 / 0.6])
    assert math.isnan(result.scores[2])
    np.testing.assert_allclose(result.scores[3], 0.4 / 0.6)
    assert result.details["column/seen"] == [True] * 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"false_positive": 0.5, "false_negative": 0.5}, "false_positive + false_negative"),
        ({"false_positive": 0.7, "false_negative": 0.6}, "false_positive + false_negative"),
        ({"false_positive": -0.1, "false_negative": 0.1}, "NoiseCorrected.false_positive"),
        ({"false_positive": 0.1, "false_negative": 1.5}, "NoiseCorrected.false_negative"),
        (
            {"false_positive": False, "false_negative": 0.1},
            "NoiseCorrected.false_positive: Input should be a valid number",
        ),
    ],
)
def test_noise_corrected_rejects_bad_rates_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace("+", r"\+")):
        NoiseCorrected(Column(), **kwargs)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flip": 1.5}, "NoisyReward.flip"),
        ({"flip": -0.1}, "NoisyReward.flip"),
        ({"false_positive": 2.0}, "NoisyReward.false_positive"),
        ({"false_negative": -1.0}, "NoisyReward.false_negative"),
        ({"gaussian": -1.0}, "NoisyReward.gaussian"),
        ({"gaussian": math.inf}, "NoisyReward.gaussian"),
        ({"flip": 0.1, "false_positive": 0.1}, "flip is exclusive"),
        ({"flip": 0.1, "gaussian": 0.1}, "gaussian is exclusive"),
        ({}, "no noise configured"),
        ({"flip": 0.1, "level": "batch"}, "NoisyReward.level"),
        ({"flip": 0.1, "seed": "x"}, "NoisyReward.seed"),
        ({"flip": 0.1, "seed": 1.5}, "NoisyReward.seed"),
        ({"flip": True}, "NoisyReward.flip: Input should be a valid number"),
        ({"flip": math.nan}, "NoisyReward.flip"),
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NoisyReward(Column(), **kwargs)


def test_inner_must_be_a_reward():
    with pytest.raises(ValueError, match="NoisyReward.inner: Input should be an instance of Reward"):
        NoisyReward(lambda r: r, flip=0.1)  # type: ignore[arg-type]


def test_flip_equals_equal_false_positive_and_negative_rates():
    b = batch([float(i % 2) for i in range(300)])
    a = NoisyReward(Column(), flip=0.3, seed=8)(b)
    c = NoisyReward(Column(), false_positive=0.3, false_negative=0.3, seed=8)(b)
    assert a.scores.tolist() == c.scores.tolist()
