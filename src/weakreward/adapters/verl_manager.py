"""`GroupRewardManager`: a verl 0.9 reward-loop manager that scores whole groups (``MajorityVote`` in verl).

verl 0.9's trainer scores rewards only through its reward loop (``verl/experimental/reward_loop``): the
``RewardLoopManager`` cuts the batch into ``reward.num_workers`` chunks, and each ``RewardLoopWorker`` calls
its manager's ``run_single`` once per completion, all of a chunk concurrently on one event loop (while
rolling out, verl's agent loop also sends each finished completion to a random worker). Its managers
(``naive``, ``dapo``...) score each completion alone, so a group reward cannot run in them.

This manager holds a per-group barrier inside the worker: each completion waits until every completion of
its group (the rows sharing verl's ``uid``) has arrived, then the group is scored in one call of the
weakreward reward, and each completion returns its own score. Load it with verl's keys for a custom
manager, next to the usual custom function (a file exposing ``reward.as_verl()``)::

    reward.custom_reward_function.path=weak_rewards.py
    reward.custom_reward_function.name=compute_score_vote
    reward.reward_manager.source=importlib
    reward.reward_manager.name=GroupRewardManager
    reward.reward_manager.module.path=pkg://weakreward.adapters.verl_manager
    reward.num_workers=1

A group must reach one worker whole. When a worker receives part of a group (the batch was cut into
chunks that are not multiples of the group, or reordered first), the manager raises at once, naming
``reward.num_workers``; a group that is still incomplete after ``group_timeout_s`` seconds (set it with
``+reward.reward_kwargs.group_timeout_s=...``) raises too, instead of hanging the step.

This module is the only one in weakreward that imports verl (when verl is installed).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from weakreward.adapters.verl import VerlReward

if TYPE_CHECKING:
    from verl import DataProto

try:
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
except ImportError:  # verl is not installed: the module still imports (and documents itself); building refuses
    RewardManagerBase = object  # type: ignore[misc,assignment]

__all__ = ["GroupRewardManager"]

_FIX = (
    "Set reward.num_workers=1, so that verl sends every completion of a step to one reward worker "
    "(a worker scores its completions concurrently; the reward itself may use its own process pool)."
)


@dataclass
class _Group:
    """The completions of one group that have arrived, and the future their scores land in."""

    expected: int
    future: asyncio.Future
    rows: list[dict[str, Any]] = field(default_factory=list)


def _adapter(compute_score: Any) -> VerlReward:
    """The `VerlReward` behind verl's custom function (verl wraps it in ``functools.partial``)."""
    fn = compute_score
    while isinstance(fn, functools.partial):
        inner = [a for a in fn.args if isinstance(a, VerlReward)]
        fn = inner[0] if inner else fn.func
    if not isinstance(fn, VerlReward):
        raise ValueError(
            "GroupRewardManager scores groups with a weakreward reward: set reward.custom_reward_function.path "
            "and .name to a file and a name holding reward.as_verl() (e.g. compute_score = MajorityVote().as_verl()), "
            f"got {compute_score!r}"
        )
    return fn


def _chunk_uids(uids: np.ndarray) -> np.ndarray | None:
    """The ``uid`` column of the whole chunk a one-row slice was cut from, or None when the row came alone.

    ``RewardLoopWorker.compute_score_batch`` hands each row over as ``data[i : i + 1]``, a numpy view of
    the chunk's column: its ``base`` is the chunk's column, which tells how many rows of each group this
    worker received. A row sent on its own (verl's streaming path) has no such base.
    """
    base = uids.base
    if isinstance(base, np.ndarray) and base.ndim == 1 and len(base) > len(uids) and base.dtype == uids.dtype:
        return base
    return None


class GroupRewardManager(RewardManagerBase):
    """verl reward-loop manager that scores each group (the completions sharing a ``uid``) in one call.

    verl builds it in every reward worker as ``GroupRewardManager(config, tokenizer, compute_score, ...)``
    where ``compute_score`` is the custom reward function (``reward.as_verl()``); see the module docstring
    for the config keys. Each completion becomes one row of a `Rollouts`: ``prompts`` from verl's
    ``raw_prompt``, ``completions`` the decoded response, ``group_ids`` verl's ``uid``, ``references`` from
    ``reward_model.ground_truth`` (a JSON list such as ``'["18"]'`` gives its first entry) and ``extras``
    from ``extra_info`` and ``data_source``. ``run_single`` returns ``{"reward_score": float,
    "reward_extra_info": {...}}``, the extra info being `VerlReward`'s per-completion dict.

    A reward that scores each completion alone works too (every completion then waits for its group).

    Args:
        config: verl's trainer config; reads ``actor_rollout_ref.rollout.n`` (the group size) and
            ``reward.reward_kwargs.group_timeout_s`` (default 600).
        tokenizer: The policy's tokenizer (decodes the responses).
        compute_score: verl's wrapped custom reward function, which must be a `VerlReward`.
        reward_router_address: Passed by verl's reward loop (the address of its reward-model router); ignored.
        reward_model_tokenizer: Passed by verl's reward loop (the reward model's tokenizer); ignored.
    """

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        if RewardManagerBase is object:
            raise ImportError(
                "GroupRewardManager runs inside verl 0.9: pip install 'weakreward[verl]' and verl==0.9.1 --no-deps"
            )
        super().__init__(config, tokenizer, compute_score)
        self.adapter = _adapter(compute_score)
        self.group_size = int(config.actor_rollout_ref.rollout.n)
        reward_kwargs = config.reward.get("reward_kwargs", None) or {}
        self.timeout_s = float(reward_kwargs.get("group_timeout_s", 600.0))
        if not self.timeout_s > 0:
            raise ValueError(f"reward.reward_kwargs.group_timeout_s must be positive, got {self.timeout_s}")
        self._groups: dict[Hashable, _Group] = {}

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        if "uid" not in data.non_tensor_batch:
            raise ValueError(
                "GroupRewardManager needs verl's 'uid' column (the group of each completion); verl's PPO trainer "
                "adds it before rollout"
            )
        uids = data.non_tensor_batch["uid"]
        uid = uids[-1]
        row = self._row(data)
        chunk = _chunk_uids(uids)
        expected = int(np.sum(chunk == uid)) if chunk is not None else self.group_size
        if expected % self.group_size != 0:
            raise ValueError(
                f"{self.adapter.reward.name} scores whole groups, but this reward worker received {expected} of the "
                f"{self.group_size} completions (actor_rollout_ref.rollout.n) of group uid={uid!r}: verl's "
                "RewardLoopManager cut the batch into reward.num_workers chunks that split the group. " + _FIX
            )
        loop = asyncio.get_running_loop()
        group = self._groups.get(uid)
        if group is None:
            group = self._groups[uid] = _Group(expected, loop.create_future())
        position = len(group.rows)
        group.rows.append(row)
        if len(group.rows) == group.expected:
            del self._groups[uid]
            try:
                scores = await loop.run_in_executor(None, self._score, group.rows)
            except Exception as error:  # every waiting completion of the group gets the same error
                group.future.set_exception(error)
                raise
            group.future.set_result(scores)
        try:
            results = await asyncio.wait_for(asyncio.shield(group.future), self.timeout_s)
        except asyncio.TimeoutError:
            self._groups.pop(uid, None)
            raise TimeoutError(
                f"{self.adapter.reward.name}: group uid={uid!r} got {len(group.rows)} of its {group.expected} "
                f"completions in {self.timeout_s:g} s (reward.reward_kwargs.group_timeout_s); the rest went to "
                "another reward worker or never came (validation with actor_rollout_ref.rollout.val_kwargs.n "
                "different from actor_rollout_ref.rollout.n). " + _FIX
            ) from None
        result = results[position]
        return {"reward_score": result["score"], "reward_extra_info": dict(result)}

    def _row(self, data: DataProto) -> dict[str, Any]:
        item = data[-1]  # for multi-sequence outputs verl scores the last sequence
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        fields = item.non_tensor_batch
        return {
            "response_ids": response_ids[:valid],
            "data_source": fields.get("data_source"),
            "ground_truth": (fields.get("reward_model") or {}).get("ground_truth"),
            "extra_info": fields.get("extra_info"),
            "prompt": fields.get("raw_prompt"),
            "uid": fields["uid"],
        }

    def _score(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score one whole group (off the event loop: verifiers block)."""
        tokenizer: Any = self.tokenizer
        texts = [tokenizer.decode(r["response_ids"], skip_special_tokens=True) for r in rows]
        rollouts = self.adapter.rollouts(
            [r["data_source"] for r in rows],
            texts,
            [r["ground_truth"] for r in rows],
            [r["extra_info"] for r in rows],
            prompts=[r["prompt"] if r["prompt"] is not None else "" for r in rows],
            group_ids=[r["uid"] for r in rows],
        )
        return self.adapter._dicts(self.adapter.reward(rollouts))
