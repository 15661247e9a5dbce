"""Seeded randomness for rewards: uniform and normal draws from a hash of ``(seed, stream, key)``.

Rewards never use a global RNG: a draw is a pure function of the reward's seed and what it is keyed by
(a call counter and a position, or a prompt), so the same seed and the same calls give the same scores
in every process, and a resumed run continues the same stream from its saved counter.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import Field, Strict, TypeAdapter

__all__ = ["calls_from_state", "normals", "uniforms"]

_TWO_POW_53 = float(2**53)
_CALLS = TypeAdapter(Annotated[int, Strict(), Field(ge=0)])


def uniforms(seed: int, stream: str, keys: Sequence[str]) -> np.ndarray:
    """``[len(keys)]`` uniforms in the open interval (0, 1), one per key, from blake2b(``"seed:stream:key"``).

    53 bits of the digest give the mantissa; adding 0.5 keeps the value strictly inside (0, 1) so that
    ``log(u)`` in Box–Muller is always finite.

    Args:
        seed: The reward's seed.
        stream: Separates independent uses of one seed (``"flip"``, a call number...).
        keys: One key per draw; equal keys give equal draws.

    Examples:
        >>> u = uniforms(0, "flip", ["a", "b", "a"])
        >>> bool(u[0] == u[2] != u[1]), bool(((0 < u) & (u < 1)).all())
        (True, True)
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


def normals(seed: int, keys: Sequence[str]) -> np.ndarray:
    """``[len(keys)]`` standard normal draws (Box–Muller on two hashed uniforms per key).

    Args:
        seed: The reward's seed.
        keys: One key per draw; equal keys give equal draws.
    """
    u1 = uniforms(seed, "gauss-r", keys)
    u2 = uniforms(seed, "gauss-theta", keys)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def calls_from_state(owner: str, state: dict[str, Any]) -> int:
    """The ``"calls"`` counter of a reward's `state_dict`, validated (a non-negative int).

    Args:
        owner: The reward's class name, for the error message.
        state: What the reward's `state_dict` returned.
    """
    try:
        return int(_CALLS.validate_python(state.get("calls")))
    except ValueError as e:
        raise ValueError(f"{owner}.load_state_dict: 'calls' must be a non-negative int ({e})") from None
