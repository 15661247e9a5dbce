"""weakreward: weak-reward primitives for RLVR on language models.

Reward objects (verifiers, noise injectors, proxy rewards) that compose and plug into TRL, verl and
OpenRLHF; a lean GRPO trainer; and the probes and saturation dynamics of arXiv 2604.18574.
"""

from weakreward.kernels.token_stats import token_stats_from_logits
from weakreward.rewards.base import Reward, RewardResult, Verdict, Verifier
from weakreward.rewards.composition import Clip, Gate, WeightedSum
from weakreward.rollouts import Rollouts, TokenStats

__version__ = "0.1.0"

__all__ = [
    "Clip",
    "Gate",
    "Reward",
    "RewardResult",
    "Rollouts",
    "TokenStats",
    "Verdict",
    "Verifier",
    "WeightedSum",
    "token_stats_from_logits",
]
