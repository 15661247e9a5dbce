"""Adapters that hand a weakreward `Reward` to other trainers: TRL, verl and OpenRLHF.

Reach them through ``reward.as_trl()``, ``reward.as_verl()`` and ``reward.as_openrlhf()``; none of
them imports its trainer, so they work (and pickle) where the trainer is not installed.
"""

from weakreward.adapters.openrlhf import OpenRLHFReward
from weakreward.adapters.trl import TRLReward
from weakreward.adapters.verl import VerlReward

__all__ = ["OpenRLHFReward", "TRLReward", "VerlReward"]
