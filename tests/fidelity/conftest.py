"""Shared fixtures of the fidelity tests: one math-verify worker for the whole folder."""

from __future__ import annotations

import pytest

from weakreward.rewards.math_verifier import MathVerifier


@pytest.fixture(scope="session")
def math_verifier():
    verifier = MathVerifier(workers=1)
    yield verifier
    verifier.close()
