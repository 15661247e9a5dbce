"""Reward noise: `NoisyReward` corrupts another reward's scores; `NoiseCorrected` undoes it in expectation.

Both wrap an inner reward and keep its `needs`, its group view and its `state_dict` (forwarded under
``"inner"``). The noise is drawn from a hash of ``(seed, key)`` (blake2b), never from a global RNG, so the
same seed and the same calls give the same scores in every process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from weakreward.rewards.base import Reward, RewardResult
from weakreward.rewards.composition import Wrapper, namespaced
from weakreward.rollouts import Rollouts, prompt_key

_TWO_POW_53 = float(2**53)


def _uniforms(seed: int, stream: str, keys: Sequence[str]) -> np.ndarray:
    """``[len(keys)]`` uniforms in the open interval (0, 1), one per key, from blake2b(seed, stream, key).

    53 bits of the digest give the mantissa; adding 0.5 keeps the value strictly inside (0, 1) so that
    ``log(u)`` in Box–Muller is always finite.
    """
    out = np.empty(len(keys), dtype=np.float64)
    prefix = f"{seed}:{stream}:".encode()
    seen: dict[str, float] = {}  # a GRPO group repeats its prompt key: hash each key once
    for i, key in enumerate(keys):
        value = seen.get(key)
        if value is None:
            digest = hashlib.blake2b(prefix + key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            value = seen[key] = ((int.from_bytes(digest, "big") >> 11) + 0.5) / _TWO_POW_53
        out[i] = value
    return out


def _normals(seed: int, keys: Sequence[str]) -> np.ndarray:
    """``[len(keys)]`` standard normal draws (Box–Muller on two hashed uniforms per key)."""
    u1 = _uniforms(seed, "gauss-r", keys)
    u2 = _uniforms(seed, "gauss-theta", keys)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def _validation_message(owner: str, error: ValidationError) -> str:
    """A one-line-per-problem message that names each offending field, e.g. ``NoisyReward.flip: ...``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{owner}.{field}: {message}" if field else f"{owner}: {message}")
    return "; ".join(lines)


class _NoiseConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    flip: float | None = Field(None, ge=0.0, le=1.0, description="Symmetric flip rate of a binary reward.")
    false_positive: float | None = Field(None, ge=0.0, le=1.0, description="ρ0: P(noisy = 1 | clean = 0).")
    false_negative: float | None = Field(None, ge=0.0, le=1.0, description="ρ1: P(noisy = 0 | clean = 1).")
    gaussian: float | None = Field(None, ge=0.0, allow_inf_nan=False, description="σ of additive N(0, σ²) noise.")
    level: Literal["sample", "prompt"] = Field("sample", description="Fresh noise per completion, or fixed per prompt.")
    seed: int = Field(0, description="Seed of the hash-based generator.")

    @field_validator("flip", "false_positive", "false_negative", "gaussian", "seed", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"must be a number, not a bool ({value!r})")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> _NoiseConfig:
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

    def __init__(
        self,
        inner: Reward,
        *,
        flip: float | None = None,
        false_positive: float | None = None,
        false_negative: float | None = None,
        gaussian: float | None = None,
        level: Literal["sample", "prompt"] = "sample",
        seed: int = 0,
    ) -> None:
        self._set_inner("NoisyReward", inner)
        try:
            config = _NoiseConfig(
                flip=flip,
                false_positive=false_positive,
                false_negative=false_negative,
                gaussian=gaussian,
                level=level,
                seed=seed,
            )
        except ValidationError as error:
            raise ValueError(_validation_message("NoisyReward", error)) from None
        self.config = config
        self._calls = 0

    # -- configuration --------------------------------------------------------------------------
    @property
    def binary(self) -> bool:
        """True for label-flip noise, False for Gaussian noise."""
        return self.config.gaussian is None

    @property
    def rates(self) -> tuple[float, float]:
        """``(ρ0, ρ1)``: the false-positive and false-negative rates (0, 0 for Gaussian noise)."""
        c = self.config
        if c.flip is not None:
            return c.flip, c.flip
        return c.false_positive or 0.0, c.false_negative or 0.0

    @property
    def name(self) -> str:  # type: ignore[override]
        c = self.config
        if c.gaussian is not None:
            noise = f"gaussian={c.gaussian:g}"
        elif c.flip is not None:
            noise = f"flip={c.flip:g}"
        else:
            noise = f"fp={self.rates[0]:g},fn={self.rates[1]:g}"
        return f"noisy({self.inner.name},{noise},{c.level})"

    # -- scoring --------------------------------------------------------------------------------
    def _keys(self, rollouts: Rollouts, call: int) -> list[str]:
        if self.config.level == "prompt":
            return [f"prompt:{prompt_key(p)}" for p in rollouts.prompts]
        return [f"sample:{call}:{i}" for i in range(len(rollouts))]

    def compute(self, rollouts: Rollouts) -> RewardResult:
        call = self._calls
        self._calls += 1
        inner = self.inner_result(rollouts)
        clean = inner.scores
        keys = self._keys(rollouts, call)
        details: dict[str, Sequence[Any]] = {"clean": clean.tolist()}
        if self.binary:
            rho0, rho1 = self.rates
            u = _uniforms(self.config.seed, "flip", keys)
            valid = ~np.isnan(clean)
            positive = valid & (clean > 0.5)
            negative = valid & ~positive
            flipped = (positive & (u < rho1)) | (negative & (u < rho0))
            scores = np.where(flipped, np.where(positive, 0.0, 1.0), clean)
            details["flipped"] = flipped.tolist()
        else:
            noise = float(self.config.gaussian) * _normals(self.config.seed, keys)  # type: ignore[arg-type]
            scores = clean + noise  # NaN + x stays NaN
            details["noise"] = noise.tolist()
        details.update(namespaced(self.inner.name, inner, with_score=False))
        return RewardResult(scores, details)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"calls": <calls so far>, "inner": <inner state>}``."""
        return {"calls": self._calls, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        calls = state.get("calls")
        if isinstance(calls, bool) or not isinstance(calls, (int, np.integer)) or calls < 0:
            raise ValueError(f"NoisyReward.load_state_dict: 'calls' must be a non-negative int, got {calls!r}")
        self._calls = int(calls)
        self.inner.load_state_dict(state.get("inner", {}))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items() if v is not None)
        return f"NoisyReward({self.inner!r}, {fields})"


class _CorrectionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    false_positive: float = Field(..., ge=0.0, le=1.0, description="ρ0: P(noisy = 1 | clean = 0).")
    false_negative: float = Field(..., ge=0.0, le=1.0, description="ρ1: P(noisy = 0 | clean = 1).")

    @field_validator("false_positive", "false_negative", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"must be a number, not a bool ({value!r})")
        return value

    @model_validator(mode="after")
    def _invertible(self) -> _CorrectionConfig:
        if self.false_positive + self.false_negative >= 1.0:
            raise ValueError(
                f"false_positive + false_negative must be < 1 for the correction to exist, got "
                f"{self.false_positive} + {self.false_negative} = {self.false_positive + self.false_negative}"
            )
        return self


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

    def __init__(self, inner: Reward, *, false_positive: float, false_negative: float) -> None:
        self._set_inner("NoiseCorrected", inner)
        try:
            self.config = _CorrectionConfig(false_positive=false_positive, false_negative=false_negative)
        except ValidationError as error:
            raise ValueError(_validation_message("NoiseCorrected", error)) from None

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"corrected({self.inner.name},fp={self.config.false_positive:g},fn={self.config.false_negative:g})"

    def compute(self, rollouts: Rollouts) -> RewardResult:
        inner = self.inner_result(rollouts)
        rho0, rho1 = self.config.false_positive, self.config.false_negative
        scores = (inner.scores - rho0) / (1.0 - rho0 - rho1)
        details: dict[str, Sequence[Any]] = {"uncorrected": inner.scores.tolist()}
        details.update(namespaced(self.inner.name, inner, with_score=False))
        return RewardResult(scores, details)

    def __repr__(self) -> str:
        c = self.config
        return f"NoiseCorrected({self.inner!r}, false_positive={c.false_positive}, false_negative={c.false_negative})"
