"""weakreward: weak-reward primitives for RLVR on language models.

Reward objects (verifiers, noise injectors, proxy rewards) that compose and plug into TRL, verl and
OpenRLHF; a lean GRPO trainer; and the probes and saturation dynamics of arXiv 2604.18574.
"""

from weakreward.data.label_noise import corrupt_labels, mine_wrong_answers
from weakreward.data.problem import Problem
from weakreward.data.sampling import scarce
from weakreward.dynamics.tracker import SaturationTracker
from weakreward.grpo.callbacks import Callback
from weakreward.grpo.config import GRPOConfig, LoRAConfig
from weakreward.grpo.trainer import GRPOTrainer
from weakreward.kernels.token_stats import token_stats_from_logits
from weakreward.rewards.base import Reward, RewardResult, Verdict, Verifier
from weakreward.rewards.composition import Clip, Gate, WeightedSum
from weakreward.rewards.entropy import TokenEntropy, TrajectoryEntropy
from weakreward.rewards.exact_match import ExactMatch
from weakreward.rewards.format_reward import FormatReward
from weakreward.rewards.majority_vote import MajorityVote
from weakreward.rewards.math_verifier import MathVerifier
from weakreward.rewards.multiple_choice import MultipleChoice
from weakreward.rewards.noise import NoiseCorrected, NoisyReward
from weakreward.rewards.numeric_match import NumericMatch
from weakreward.rewards.random_reward import RandomReward
from weakreward.rewards.reasoning_gym import ReasoningGymVerifier
from weakreward.rewards.self_certainty import SelfCertainty
from weakreward.rollout.engine import Generation, RolloutEngine
from weakreward.rollouts import Rollouts, TokenStats

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "Clip",
    "ExactMatch",
    "FormatReward",
    "GRPOConfig",
    "GRPOTrainer",
    "Gate",
    "Generation",
    "LoRAConfig",
    "MajorityVote",
    "MathVerifier",
    "MultipleChoice",
    "NoiseCorrected",
    "NoisyReward",
    "NumericMatch",
    "Problem",
    "RandomReward",
    "ReasoningGymVerifier",
    "Reward",
    "RewardResult",
    "RolloutEngine",
    "Rollouts",
    "SaturationTracker",
    "SelfCertainty",
    "TokenEntropy",
    "TokenStats",
    "TrajectoryEntropy",
    "Verdict",
    "Verifier",
    "WeightedSum",
    "corrupt_labels",
    "mine_wrong_answers",
    "scarce",
    "token_stats_from_logits",
]
