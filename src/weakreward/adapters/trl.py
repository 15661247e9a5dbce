"""`TRLReward`: any weakreward `Reward` as a TRL ``GRPOTrainer`` reward function.

TRL (checked against 1.16) calls each entry of ``reward_funcs`` as

    ``reward_func(prompts=..., completions=..., completion_ids=..., **reward_kwargs) -> list[float | None]``

once per process for that process's generation batch, where ``reward_kwargs`` holds every other dataset
column (one value per completion), ``trainer_state``, and two callbacks: ``log_extra(column, values)``
(a column of the completions table) and ``log_metric(name, value)`` (a scalar averaged per logging
step). ``None`` marks a completion the function could not score.

Groups. TRL's ``RepeatSampler`` puts the ``num_generations`` completions of a prompt next to each other
in the *global* generation batch, and accelerate hands each process a contiguous slice of
``per_device_train_batch_size × steps_per_generation`` of them. On one process a group is always whole;
on several, a group is split across processes unless that slice is a multiple of ``num_generations``.
A group reward (majority vote) would then vote on part of a group, so `TRLReward` checks every group it
receives and raises a ``ValueError`` that names the fix instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from weakreward.adapters._common import (
    check_whole_groups,
    completion_text,
    dedupe_groups,
    is_missing,
    reference_text,
    reject_token_stats,
    scalar_columns,
)
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts, prompt_key

# Keyword arguments TRL adds to every reward call that are not dataset columns.
_TRL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


def _trainer_num_generations(callback: Any) -> int | None:
    """The group size TRL is using right now, read from the trainer behind a ``log_metric`` callback.

    TRL passes its own bound method ``GRPOTrainer._log_metric``; its owner knows ``num_generations``
    (training) and ``num_generations_eval`` (evaluation, when ``model.training`` is False). Returns None
    when the callback is not a trainer's bound method.
    """
    trainer = getattr(callback, "__self__", None)
    if trainer is None:
        return None
    size = getattr(trainer, "num_generations", None)
    model = getattr(trainer, "model", None)
    if model is not None and getattr(model, "training", True) is False:
        size = getattr(trainer, "num_generations_eval", None) or size
    return int(size) if isinstance(size, int) and size > 0 else None


class TRLReward:
    """A `Reward` as a TRL ``GRPOTrainer`` reward function (a picklable object, not a closure).

    Build it with ``reward.as_trl(...)``. Each call turns TRL's columns into `Rollouts` and returns
    ``reward(rollouts).scores`` as a list, NaN → None (TRL then leaves that completion out of the
    group baseline).

    - **Prompts and completions** may be text or chat messages. A conversational completion scores the
      content of its assistant message(s); the prompt is kept as given (messages) in `Rollouts.prompts`.
    - **Groups**: the group id of a completion is `prompt_key` of its prompt. When the group size is
      known (``num_generations`` here, or read from the calling trainer), a prompt drawn twice into one
      batch forms two groups (``key``, ``key#2``). A reward with `Reward.sees_groups` raises
      ``ValueError`` if a group arrives split (see the module notes for the batch sizes that avoid it).
    - **References** come from the dataset column ``reference_column`` (a list, or a JSON list of
      strings such as ``'["18"]'``, gives its first entry; None/NaN → no reference). Every other
      dataset column goes to `Rollouts.extras`.
    - **Logging**: when TRL passes ``log_metric``, the scalar summaries of `RewardResult.log` other than
      the mean and std (which TRL logs itself as ``rewards/<name>/mean``) are logged as
      ``rewards/<name>/<key>``; when it passes ``log_extra``, each scalar detail column is added to
      the completions table as ``<name>/<key>``.
    - **Token statistics** are not available inside TRL's reward call, so a reward that needs
      ``token_stats`` raises ``ValueError`` here, at construction.

    Each process holds its own copy (and, for `NoisyReward`, its own noise stream): seed it per process
    if the streams must differ.

    Args:
        reward: The reward to wrap.
        reference_column: The dataset column with the gold labels.
        num_generations: The group size, to check groups against and to separate repeated prompts.
            None: read from the calling ``GRPOTrainer`` (through the ``log_metric`` callback it passes),
            else only groups of one completion are flagged as split.
        name: The name TRL logs this function under (``__name__``); defaults to ``reward.name``.

    Examples:
        >>> from weakreward import Rollouts
        >>> from weakreward.rewards.base import Reward, RewardResult
        >>> class Length(Reward):
        ...     name = "length"
        ...     def compute(self, rollouts):
        ...         return RewardResult([float(len(c)) for c in rollouts.completions])
        >>> fn = Length().as_trl()
        >>> fn.__name__
        'length'
        >>> fn(prompts=["2+2?", "2+2?"], completions=["4", [{"role": "assistant", "content": "four"}]])
        [1.0, 4.0]
    """

    def __init__(
        self,
        reward: Reward,
        reference_column: str = "answer",
        *,
        num_generations: int | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(reward, Reward):
            raise TypeError(f"TRLReward: reward must be a weakreward Reward, got {type(reward).__name__}")
        if not isinstance(reference_column, str) or not reference_column:
            raise ValueError(f"TRLReward: reference_column must be a non-empty string, got {reference_column!r}")
        if num_generations is not None and (not isinstance(num_generations, int) or num_generations < 1):
            raise ValueError(f"TRLReward: num_generations must be a positive int or None, got {num_generations!r}")
        reject_token_stats(
            reward,
            "TRL's GRPOTrainer",
            "TRL hands a reward function text and token ids, not the policy's per-token distribution.",
        )
        self.reward = reward
        self.reference_column = reference_column
        self.num_generations = num_generations
        self.__name__ = name or reward.name

    def __repr__(self) -> str:
        return f"TRLReward({self.reward!r}, reference_column={self.reference_column!r})"

    def _rollouts(
        self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: Mapping[str, Any], group_size: int | None
    ) -> Rollouts:
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(f"{self.__name__}: got {len(prompts)} prompts for {n} completions")
        columns = {
            k: v
            for k, v in kwargs.items()
            if k not in _TRL_KWARGS and isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n
        }
        if self.reference_column in columns:
            references = [reference_text(v, parse_json_list=True) for v in columns.pop(self.reference_column)]
        elif "references" in self.reward.needs:
            raise ValueError(
                f"{self.__name__} needs references, but TRL passed no dataset column {self.reference_column!r} "
                f"(columns: {sorted(columns)}): pass reference_column=... to as_trl()"
            )
        else:
            references = [None] * n
        keys = [prompt_key(p) for p in prompts]
        return Rollouts(
            prompts=tuple(prompts),
            completions=tuple(completion_text(c) for c in completions),
            group_ids=tuple(dedupe_groups(keys, group_size)),
            references=tuple(references),
            extras={k: tuple(v) for k, v in columns.items()},
        )

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        group_size = self.num_generations or _trainer_num_generations(kwargs.get("log_metric"))
        rollouts = self._rollouts(prompts, completions, kwargs, group_size)
        check_whole_groups(
            self.reward,
            rollouts,
            trainer="TRL",
            group_size=group_size,
            fix=(
                "With several processes, make per_device_train_batch_size × steps_per_generation (the "
                "per-process generation batch) a multiple of num_generations, and the same for "
                "per_device_eval_batch_size with num_generations_eval."
            ),
        )
        result = self.reward(rollouts)
        self._log(result, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [None if math.isnan(s) else float(s) for s in result.scores.tolist()]

    def _log(self, result: RewardResult, log_metric: Callable | None, log_extra: Callable | None) -> None:
        if callable(log_metric):
            for key, value in result.log().items():
                if key not in ("mean", "std") and not math.isnan(value):
                    log_metric(f"rewards/{self.__name__}/{key}", float(value))
        if callable(log_extra):
            for key, column in scalar_columns(result.details).items():
                log_extra(f"{self.__name__}/{key}", [None if is_missing(v) else v for v in column])
