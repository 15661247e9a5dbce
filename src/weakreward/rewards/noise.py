"""Reward noise: `NoisyReward` corrupts another reward's scores; `NoiseCorrected` undoes it in expectation.

Both wrap an inner reward and keep its `needs`, its group view and its `state_dict` (forwarded under
``"inner"``). The noise is drawn from a hash of ``(seed, key)`` (blake2b), never from a global RNG, so the
same seed and the same calls give the same scores in every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from weakreward.rewards.base import Reward, RewardResult, reward_dataclass
from weakreward.rewards.composition import Wrapper, namespaced
from weakreward.rewards.hashing import calls_from_state
from weakreward.rewards.hashing import normals as _normals
from weakreward.rewards.hashing import uniforms as _uniforms
from weakreward.rollouts import Rollouts, prompt_key


@reward_dataclass
class NoisyReward(Wrapper):
    """Another reward with injected noise: binary label flips or additive Gaussian noise.

    Binary noise is the class-conditional noise model of Natarajan et al. 2013 ("Learning with Noisy
    Labels") as used for RLVR by Cai et al. 2025 ("Reinforcement Learning with Verifiable yet Noisy
    Rewards under Imperfect Verifiers"; the cognichip Noisy-RL setting): with ``y`` the clean label,

        ``P(ỹ = 1 | y = 0) = ρ0`` (``false_positive``),  ``P(ỹ = 0 | y = 1) = ρ1`` (``false_negative``),

    and ``flip=p`` is the symmetric case ``ρ0 = ρ1 = p``. Expected noisy reward:
    ``E[ỹ] = ρ0 + (1 − ρ0 − ρ1) · E[y]``, which `NoiseCorrected` inverts. ``gaussian=σ`` adds
    ``ε ~ N(0, σ²)`` to a continuous reward instead.

    The inner score is read as a label: positive when ``r > 0.5``. A flipped positive scores 0, a flipped
    negative scores 1, an unflipped score passes through unchanged, so a non-binary inner reward never
    crashes training; NaN inner scores stay NaN and are never counted as flipped.

    Levels:
        ``"sample"``: fresh noise for every completion on every call (a flaky verifier). The draw for
        completion ``i`` of call ``c`` is ``u = blake2b(seed, c, i)``; the call counter ``c`` is this reward's
        state (`state_dict`), so a resumed run continues the same stream.
        ``"prompt"``: the noise is a function of the prompt only, ``u = blake2b(seed, prompt_key(prompt))``,
        so every completion of a prompt, on every call, gets the same corruption. With ``gaussian`` the
        whole prompt gets one shared offset ``σ·z``. The key is the prompt itself
        (``Rollouts.prompts[i]``, chat messages rendered as canonical JSON by `prompt_key`), never the
        group id, the row or its extras: trainers add per-completion fields to a row (verl adds
        ``num_cached_tokens``, ``global_steps``, ``raw_prompt``, ... to ``extra_info``), which must not
        change the draw. Rollouts built without prompts (all ``""``) share one draw.

        Prompt-level noise is **not a wrong label**. A flipped prompt inverts every reward of its group
        (right answers score 0, *every* wrong answer scores 1); a wrong label ``W`` rewards only the
        completions that answer ``W``. The paper's label noise (arXiv 2604.18574 §4, the released
        ``sky_math_2048_gamma*`` files) is the second kind: build it with
        `weakreward.data.corrupt_labels` and train with the plain verifier.

    A completion flips when ``u < ρ1`` (clean positive) or ``u < ρ0`` (clean negative).

    Args:
        inner: The clean reward (for example a verifier).
        flip: Symmetric flip rate ``p`` in ``[0, 1]``; exclusive with the two rates below.
        false_positive: ``ρ0`` in ``[0, 1]`` (0 → 1); an unset rate is 0.
        false_negative: ``ρ1`` in ``[0, 1]`` (1 → 0).
        gaussian: ``σ ≥ 0`` of additive Gaussian noise; exclusive with the binary rates.
        level: ``"sample"`` or ``"prompt"``.
        seed: Seed of the hash-based generator.

    Scores: the noisy score per completion; NaN where the inner score is NaN.
    ``details``: ``clean`` (the inner score), ``flipped`` (binary noise) or ``noise`` (the added ``σ·z``,
    Gaussian), and the inner reward's details as ``"<inner name>/<key>"``.

    Raises:
        ValueError: on a bad configuration, naming the field (``NoisyReward.flip: ...``).

    Examples:
        >>> from weakreward import ExactMatch
        >>> noisy = NoisyReward(ExactMatch(), flip=1.0)
        >>> noisy.score(["\\\\boxed{4}", "\\\\boxed{5}"], references=["4", "4"]).scores.tolist()
        [0.0, 1.0]
        >>> NoisyReward(ExactMatch(), false_positive=0.2, level="prompt", seed=3).name
        'noisy(exact_match,fp=0.2,fn=0,prompt)'
    """

    inner: Reward
    flip: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    false_positive: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    false_negative: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    gaussian: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    level: Literal["sample", "prompt"] = "sample"
    seed: int = 0

    @model_validator(mode="after")
    def _one_kind(self) -> NoisyReward:
        if self.flip is not None and (self.false_positive is not None or self.false_negative is not None):
            raise ValueError(
                "flip is exclusive with false_positive/false_negative: flip=p means false_positive = "
                "false_negative = p; give either flip or the two rates"
            )
        binary = self.flip is not None or self.false_positive is not None or self.false_negative is not None
        if binary and self.gaussian is not None:
            raise ValueError(
                "gaussian is exclusive with flip/false_positive/false_negative: wrap one NoisyReward in another "
                "to combine them"
            )
        if not binary and self.gaussian is None:
            raise ValueError("no noise configured: give flip, false_positive and/or false_negative, or gaussian")
        return self

    _calls: ClassVar[int]  # set per instance in __post_init__ (state, not configuration)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_calls", 0)

    # -- configuration --------------------------------------------------------------------------
    @property
    def binary(self) -> bool:
        """True for label-flip noise, False for Gaussian noise."""
        return self.gaussian is None

    @property
    def rates(self) -> tuple[float, float]:
        """``(ρ0, ρ1)``: the false-positive and false-negative rates (0, 0 for Gaussian noise)."""
        if self.flip is not None:
            return self.flip, self.flip
        return self.false_positive or 0.0, self.false_negative or 0.0

    @property
    def name(self) -> str:
        if self.gaussian is not None:
            noise = f"gaussian={self.gaussian:g}"
        elif self.flip is not None:
            noise = f"flip={self.flip:g}"
        else:
            noise = f"fp={self.rates[0]:g},fn={self.rates[1]:g}"
        return f"noisy({self.inner.name},{noise},{self.level})"

    # -- scoring --------------------------------------------------------------------------------
    def _keys(self, rollouts: Rollouts, call: int) -> list[str]:
        if self.level == "prompt":
            return [f"prompt:{prompt_key(p)}" for p in rollouts.prompts]
        return [f"sample:{call}:{i}" for i in range(len(rollouts))]

    def compute(self, rollouts: Rollouts) -> RewardResult:
        call = self._calls
        object.__setattr__(self, "_calls", call + 1)
        inner = self.inner_result(rollouts)
        clean = inner.scores
        keys = self._keys(rollouts, call)
        details: dict[str, Sequence[Any]] = {"clean": clean.tolist()}
        if self.binary:
            rho0, rho1 = self.rates
            u = _uniforms(self.seed, "flip", keys)
            valid = ~np.isnan(clean)
            positive = valid & (clean > 0.5)
            negative = valid & ~positive
            flipped = (positive & (u < rho1)) | (negative & (u < rho0))
            scores = np.where(flipped, np.where(positive, 0.0, 1.0), clean)
            details["flipped"] = flipped.tolist()
        else:
            assert self.gaussian is not None  # not binary
            noise = self.gaussian * _normals(self.seed, keys)
            scores = clean + noise  # NaN + x stays NaN
            details["noise"] = noise.tolist()
        details.update(namespaced(self.inner.name, inner, with_score=False))
        return RewardResult(scores, details)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"calls": <calls so far>, "inner": <inner state>}``."""
        return {"calls": self._calls, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_calls", calls_from_state("NoisyReward", state))
        self.inner.load_state_dict(state.get("inner", {}))

    def __repr__(self) -> str:
        fields = ("flip", "false_positive", "false_negative", "gaussian", "level", "seed")
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in fields if getattr(self, k) is not None)
        return f"NoisyReward({self.inner!r}, {shown})"


@reward_dataclass
class NoiseCorrected(Wrapper):
    """The unbiased backward correction of a binary reward with known flip rates.

    For class-conditional noise with ``ρ0 = P(ỹ=1 | y=0)`` and ``ρ1 = P(ỹ=0 | y=1)`` (Natarajan et al.
    2013, "Learning with Noisy Labels", Lemma 1; applied to RLVR rewards by Cai et al. 2025,
    "Reinforcement Learning with Verifiable yet Noisy Rewards under Imperfect Verifiers"):

        ``r̂ = (r − ρ0) / (1 − ρ0 − ρ1)``

    so that ``E[r̂ | y] = y`` for ``y ∈ {0, 1}``: the corrected reward is an unbiased estimate of the clean
    one (at the price of variance, and of values outside [0, 1]: ``r̂(0) = −ρ0/(1−ρ0−ρ1)``,
    ``r̂(1) = (1−ρ0)/(1−ρ0−ρ1)``). The correction is applied to any score, NaN stays NaN.

    Args:
        inner: The noisy reward (for example a `NoisyReward`, or a verifier with a known error rate).
        false_positive: ``ρ0`` in ``[0, 1]``.
        false_negative: ``ρ1`` in ``[0, 1]``; ``ρ0 + ρ1 < 1``.

    Scores: ``r̂`` per completion. ``details``: ``uncorrected`` (the inner score) and the inner details
    as ``"<inner name>/<key>"``.

    Raises:
        ValueError: when a rate is outside [0, 1] or ``false_positive + false_negative ≥ 1``.

    Examples:
        >>> from weakreward import ExactMatch
        >>> r = NoiseCorrected(ExactMatch(), false_positive=0.2, false_negative=0.3)
        >>> r.score(["\\\\boxed{4}", "\\\\boxed{5}"], references=["4", "4"]).scores.tolist()
        [1.6, -0.4]
    """

    inner: Reward
    false_positive: Annotated[float, Field(ge=0.0, le=1.0)]
    false_negative: Annotated[float, Field(ge=0.0, le=1.0)]

    @model_validator(mode="after")
    def _invertible(self) -> NoiseCorrected:
        if self.false_positive + self.false_negative >= 1.0:
            raise ValueError(
                f"false_positive + false_negative must be < 1 for the correction to exist, got "
                f"{self.false_positive} + {self.false_negative} = {self.false_positive + self.false_negative}"
            )
        return self

    @property
    def name(self) -> str:
        return f"corrected({self.inner.name},fp={self.false_positive:g},fn={self.false_negative:g})"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        inner = self.inner_result(rollouts)
        rho0, rho1 = self.false_positive, self.false_negative
        scores = (inner.scores - rho0) / (1.0 - rho0 - rho1)
        details: dict[str, Sequence[Any]] = {"uncorrected": inner.scores.tolist()}
        details.update(namespaced(self.inner.name, inner, with_score=False))
        return RewardResult(scores, details)

    def __repr__(self) -> str:
        return f"NoiseCorrected({self.inner!r}, false_positive={self.false_positive}, false_negative={self.false_negative})"
