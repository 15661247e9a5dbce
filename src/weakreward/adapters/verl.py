"""`VerlReward`: any weakreward `Reward` as verl's ``compute_score``.

verl 0.9 loads a custom reward with ``reward.custom_reward_function.path=<file>
reward.custom_reward_function.name=<attr>`` and hands it to a reward manager of its reward loop, which calls
it in one of two shapes (both with keyword arguments):

- verl's **naive** and **dapo** managers (``reward.reward_manager.name``), once per completion:
  ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``, and reads
  ``result["score"]``, keeping every other key of the returned dict as ``reward_extra_info``;
- weakreward's `weakreward.adapters.verl_manager.GroupRewardManager`, and verl's legacy batch manager,
  once per group (or batch):
  ``compute_score(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=..., **reward_kwargs)``,
  and reads ``result[i]["score"]`` from the returned list.

``ground_truth`` is ``row["reward_model"]["ground_truth"]`` and ``extra_info`` is ``row["extra_info"]``
of the dataset row; the prompt itself is not passed. The paper's files (arXiv 2604.18574) store
``ground_truth`` as a JSON list of strings, ``'["18"]'``; `VerlReward` scores against its *first*
entry (every file of the paper has exactly one).

Groups. Only the batch shape sees a whole group. `GroupRewardManager` passes verl's ``uid`` and
``raw_prompt``; without them the group of a completion is taken from the first of ``group_keys`` found in
its ``extra_info`` (verl's own preprocessing scripts write ``extra_info["index"]``), else from its
``data_source``, ``ground_truth`` and ``extra_info`` together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from weakreward.adapters._common import (
    check_group_options,
    check_whole_groups,
    dedupe_groups,
    reference_text,
    reject_token_stats,
    scalar_columns,
)
from weakreward.data.parquet import as_mapping
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollouts import Rollouts

# Keys verl's reward managers and agent loop merge into a completion's extra_info (per rollout, per step):
# never part of a row's identity.
_PER_ROLLOUT_KEYS = frozenset(
    {
        "num_turns",
        "__num_turns__",
        "rollout_reward_scores",
        "reward_scores",
        "num_cached_tokens",
        "global_steps",
        "raw_prompt",
        "reward_extra_info",
        "turn_scores",
        "tool_rewards",
    }
)


class VerlScore(dict):
    """verl's per-completion result: a dict (``"score"`` and the details) that also answers ``[0]`` with the
    score, because verl's old ``PrimeRewardManager`` reads ``float(result[0])`` of a non-number result.

    Examples:
        >>> r = VerlScore(score=1.0, scored=True)
        >>> float(r[0]), r["score"]
        (1.0, 1.0)
    """

    def __getitem__(self, key: Any) -> Any:
        if key == 0 and not isinstance(key, bool) and 0 not in self.keys():
            return dict.__getitem__(self, "score")
        return dict.__getitem__(self, key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (VerlScore, (dict(self),))


def _extra_info_dict(extra_info: Any) -> dict[str, Any]:
    """``extra_info`` as a dict (`weakreward.data.parquet.as_mapping`); anything that is not a mapping in
    any of its stored forms is kept whole under the key ``"extra_info"``, never an exception."""
    try:
        return as_mapping(extra_info, "extra_info")
    except ValueError:
        return {"extra_info": extra_info}


def _prompt(value: Any) -> Any:
    """A prompt as `Rollouts` takes it: text as is; chat messages (numpy arrays under pandas) as a list of
    dicts."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(m, Mapping) for m in value):
        return [{str(k): _plain(v) for k, v in m.items()} for m in value]
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as Python lists and numbers, recursively (for JSON keys)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class VerlReward:
    """A `Reward` as verl's ``compute_score``, in both the per-sample and the batch call shape.

    Build it with ``reward.as_verl()`` and expose it from the file that verl's
    ``custom_reward_function.path`` points to. The call shape is recognised from the arguments
    (``solution_str`` → one dict; ``solution_strs`` → a list of dicts). Each dict holds ``"score"``
    (a float: NaN is replaced by ``nan_score``, since verl would otherwise put NaN into the
    advantages), ``"scored"`` (False where the reward returned NaN), and every scalar detail column of
    the reward (``"answer"``, ``"reason"``...; None becomes ``""`` in text columns and NaN in numeric
    ones, so that verl's per-key lists stay aligned and its validation metrics can average them).

    ``extra_info`` entries and ``data_source`` become `Rollouts.extras` columns; a JSON-object string
    ``extra_info`` (as in some of the paper's files) or an Arrow map is read as a dict. verl does not
    pass the prompt: `Rollouts.prompts` holds a stand-in fixed per dataset row (see `rollouts`).
    Other keyword arguments (verl's ``reward_kwargs``, the reward loop's ``reward_router_address``...)
    are accepted and ignored.

    A group reward (`Reward.sees_groups`, e.g. `MajorityVote`) works only in the batch shape and raises
    ``ValueError`` when called per sample; with ``group_size`` set it also raises on a group whose size
    is not a multiple of it. A reward that needs ``token_stats`` raises at construction: verl does not
    pass them to ``compute_score``.

    Args:
        reward: The reward to wrap.
        batch: None accepts both shapes; True only the batch shape; False only the per-sample shape
            (not allowed for a group reward).
        group_keys: ``extra_info`` keys tried in order for a completion's group id.
        group_size: verl's ``actor_rollout_ref.rollout.n``, to check that groups arrive whole; None
            skips the check (validation often runs with ``n=1``, where every group has one member).
        nan_score: The score verl receives where the reward could not score a completion.

    Examples:
        >>> from weakreward.rewards.base import Reward, RewardResult
        >>> class Echo(Reward):  # 1 where the completion is the reference
        ...     name, needs = "echo", frozenset({"references"})
        ...     def compute(self, rollouts):
        ...         return RewardResult([float(c == r) for c, r in zip(rollouts.completions, rollouts.references)])
        >>> compute_score = Echo().as_verl()
        >>> compute_score(data_source="math", solution_str="18", ground_truth='["18"]', extra_info={"index": 3})
        {'score': 1.0, 'scored': True}
        >>> batch = dict(data_sources=["m", "m"], solution_strs=["18", "7"], ground_truths=["18", "18"])
        >>> scores = [d["score"] for d in compute_score(**batch, extra_infos=[None, None])]
        >>> scores
        [1.0, 0.0]
    """

    def __init__(
        self,
        reward: Reward,
        batch: bool | None = None,
        *,
        group_keys: Sequence[str] = ("uid", "index"),
        group_size: int | None = None,
        nan_score: float = 0.0,
    ) -> None:
        if not isinstance(reward, Reward):
            raise TypeError(f"VerlReward: reward must be a weakreward Reward, got {type(reward).__name__}")
        if batch not in (None, True, False):
            raise ValueError(f"VerlReward: batch must be None, True or False, got {batch!r}")
        if batch is False and reward.sees_groups:
            raise ValueError(
                f"VerlReward: batch=False, but {reward.name} scores a completion against its group, which verl's "
                "per-sample compute_score never sees: use batch=None/True with weakreward's GroupRewardManager ("
                "reward.reward_manager.source=importlib reward.reward_manager.name=GroupRewardManager reward.reward_manager.module.path=pkg://weakreward.adapters.verl_manager)"
            )
        if isinstance(group_keys, str) or not all(isinstance(k, str) for k in group_keys):
            raise ValueError(f"VerlReward: group_keys must be a sequence of extra_info key names, got {group_keys!r}")
        check_group_options("VerlReward", group_size, nan_score)
        reject_token_stats(reward, "verl's compute_score", "verl passes only the decoded response text.")
        self.reward = reward
        self.batch = batch
        self.group_keys = tuple(group_keys)
        self.group_size = group_size
        self.nan_score = float(nan_score)
        self.__name__ = reward.name

    def __repr__(self) -> str:
        return f"VerlReward({self.reward!r}, batch={self.batch!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any] | list[dict[str, Any]]:
        batch_form = "solution_strs" in kwargs or (
            len(args) >= 2 and not isinstance(args[1], str) and isinstance(args[1], (Sequence, np.ndarray))
        )
        if batch_form:
            return self.score_batch(*args, **kwargs)
        return self.score_one(*args, **kwargs)

    # -- the two call shapes ------------------------------------------------------------------------
    def score_one(
        self,
        data_source: Any = None,
        solution_str: str = "",
        ground_truth: Any = None,
        extra_info: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """verl's per-sample ``compute_score``: one completion → ``{"score": float, ...}``.

        Args:
            data_source: The dataset row's ``data_source``; it becomes the ``"data_source"`` extras column.
            solution_str: The decoded response; a non-string counts as empty.
            ground_truth: ``row["reward_model"]["ground_truth"]``, read by `reference_text` (a JSON list of
                strings such as ``'["18"]'`` gives its first entry).
            extra_info: ``row["extra_info"]`` (a dict, a JSON-object string or an Arrow map); its entries
                become extras columns, and the first of ``group_keys`` found in it gives the group id.
            **kwargs: Other arguments verl passes (``reward_kwargs``...); ignored.

        Raises:
            ValueError: The adapter was built with ``batch=True``, or the reward is a group reward.
        """
        if self.batch is True:
            raise ValueError(
                f"{self.__name__}: built with batch=True but called per sample; set "
                "reward.reward_manager.source=importlib reward.reward_manager.name=GroupRewardManager reward.reward_manager.module.path=pkg://weakreward.adapters.verl_manager"
            )
        if self.reward.sees_groups:
            raise ValueError(
                f"{self.reward.name} scores a completion against its group, but verl called compute_score for a "
                "single completion (verl's naive/dapo reward manager): score it with weakreward's GroupRewardManager, "
                "which hands each group whole to the reward: reward.reward_manager.source=importlib reward.reward_manager.name=GroupRewardManager reward.reward_manager.module.path=pkg://weakreward.adapters.verl_manager"
            )
        return self._score([data_source], [solution_str], [ground_truth], [extra_info])[0]

    def score_batch(
        self,
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """verl's batch ``compute_score``: a batch of completions → one dict per completion.

        Args:
            data_sources: Each completion's ``data_source``.
            solution_strs: The decoded responses.
            ground_truths: Each completion's ``ground_truth`` (as for `score_one`).
            extra_infos: Each completion's ``extra_info`` (as for `score_one`); None gives None for each.
            **kwargs: Other arguments verl passes (``reward_kwargs``, ``reward_router_address``...); ignored.

        Raises:
            ValueError: The adapter was built with ``batch=False``; a column's length differs from that of
                ``solution_strs``; or, for a group reward with ``group_size`` set, a group's size is not a
                multiple of it.
        """
        if self.batch is False:
            raise ValueError(
                f"{self.__name__}: built with batch=False but called with a batch; use "
                "reward.reward_manager.name=naive, or build it with batch=None"
            )
        n = len(solution_strs)
        if extra_infos is None:
            extra_infos = [None] * n
        columns = {"data_sources": data_sources, "ground_truths": ground_truths, "extra_infos": extra_infos}
        for field, column in columns.items():
            if len(column) != n:
                raise ValueError(f"{self.__name__}: {field} has {len(column)} entries for {n} solution_strs")
        return self._score(list(data_sources), list(solution_strs), list(ground_truths), list(extra_infos))

    # -- shared -------------------------------------------------------------------------------------
    def rollouts(
        self,
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Any],
        *,
        prompts: Sequence[Any] | None = None,
        group_ids: Sequence[Hashable] | None = None,
    ) -> Rollouts:
        """The `Rollouts` that a batch call with these arguments scores.

        ``prompts`` and ``group_ids`` are given by `GroupRewardManager`, which reads verl's ``raw_prompt``
        and ``uid``. Without them, verl's ``compute_score`` does not pass the prompt, so a completion's
        prompt is ``extra_info["raw_prompt"]`` where verl merged it in, else a stand-in fixed per dataset
        row: the canonical JSON of its ``data_source``, ``ground_truth`` and ``extra_info`` (without the
        per-rollout and per-step keys verl adds). Prompt-level noise (``NoisyReward(level="prompt")``)
        therefore stays fixed per row and across steps, as it does for the real prompt.

        Args:
            data_sources: Each completion's ``data_source``.
            solution_strs: The decoded responses; a non-string counts as empty.
            ground_truths: Each completion's ``ground_truth``, read by `reference_text` (a JSON list of
                strings gives its first entry).
            extra_infos: Each completion's ``extra_info``; its entries become `Rollouts.extras` columns.
            prompts: The real prompts (text or chat messages); None uses ``extra_info["raw_prompt"]`` or the
                stand-in described above.
            group_ids: The group id of each completion; None takes it from the first of ``group_keys``
                found in ``extra_info``, else the stand-in, split into blocks of ``group_size``.
        """
        infos = [_extra_info_dict(x) for x in extra_infos]
        keys: list[Hashable] = []
        stand_ins: list[str] = []
        for source, truth, info in zip(data_sources, ground_truths, infos):
            rest = {k: v for k, v in info.items() if k not in _PER_ROLLOUT_KEYS}
            row_key = json.dumps(_plain([source, truth, rest]), sort_keys=True, ensure_ascii=False, default=str)
            key = next((info[k] for k in self.group_keys if k in info and info[k] is not None), None)
            stand_ins.append(row_key)
            keys.append(_plain(key) if isinstance(key, Hashable) and key is not None else row_key)
        columns: dict[str, list[Any]] = {"data_source": [_plain(s) for s in data_sources]}
        names = sorted({k for info in infos for k in info})
        for name in names:
            if name not in columns:
                columns[name] = [info.get(name) for info in infos]
        # the whole mapping too, where a reward reads it as one cell (ReasoningGymVerifier's "extra_info")
        columns.setdefault("extra_info", infos)
        if prompts is None:
            # verl's agent loop may merge the chat into extra_info; where it does, that is the real prompt
            prompts = [
                info["raw_prompt"] if info.get("raw_prompt") is not None else key for info, key in zip(infos, stand_ins)
            ]
        return Rollouts(
            prompts=tuple(_prompt(p) for p in prompts),
            completions=tuple(s if isinstance(s, str) else "" for s in solution_strs),
            group_ids=tuple(dedupe_groups(keys, self.group_size) if group_ids is None else group_ids),
            references=tuple(reference_text(t, parse_json_list=True) for t in ground_truths),
            extras={k: tuple(v) for k, v in columns.items()},
        )

    def _score(
        self,
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Any],
    ) -> list[dict[str, Any]]:
        rollouts = self.rollouts(data_sources, solution_strs, ground_truths, extra_infos)
        if self.group_size is not None:
            check_whole_groups(
                self.reward,
                rollouts,
                trainer="verl",
                group_size=self.group_size,
                fix="Score it with GroupRewardManager, and set group_size to actor_rollout_ref.rollout.n.",
            )
        return self._dicts(self.reward(rollouts))

    def _dicts(self, result: RewardResult) -> list[dict[str, Any]]:
        columns: dict[str, list[Any]] = {}
        for key, column in scalar_columns(result.details).items():
            textual = any(isinstance(v, str) for v in column) or all(v is None for v in column)
            filler: Any = "" if textual else math.nan
            name = key if key not in ("score", "scored") else f"detail/{key}"
            columns[name] = [filler if v is None else v for v in column]
        out: list[dict[str, Any]] = []
        for i, score in enumerate(result.scores.tolist()):
            scored = not math.isnan(score)
            row: dict[str, Any] = VerlScore(score=float(score) if scored else self.nan_score, scored=scored)
            row.update({k: v[i] for k, v in columns.items()})
            out.append(row)
        return out
