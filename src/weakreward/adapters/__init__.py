"""Adapters that hand a weakreward `Reward` to other trainers: TRL, verl and OpenRLHF.

Reach them through ``reward.as_trl()``, ``reward.as_verl()`` and ``reward.as_openrlhf()``; none of
them imports its trainer, so they work (and pickle) where the trainer is not installed. verl 0.9 loads
`weakreward.adapters.verl_manager.GroupRewardManager` (a reward-loop manager for group rewards) by path;
it is the one module that imports verl, and it is not imported here.
"""

from weakreward.adapters.openrlhf import OpenRLHFReward
from weakreward.adapters.trl import TRLReward
from weakreward.adapters.verl import VerlReward

__all__ = ["OpenRLHFReward", "TRLReward", "VerlReward"]
