"""`OpenRLHFReward`: any weakreward `Reward` as OpenRLHF's custom ``reward_func``.

OpenRLHF 0.11 (``--reward.remote_url /path/to/file.py --data.label_key answer``) loads ``reward_func`` from
the file and calls ``reward_func(queries, prompts, labels)``: ``queries`` are the decoded prompt + response
(special tokens kept), ``prompts`` the prompts after the chat template, ``labels`` the ``--label_key``
column. It expects ``{"rewards": tensor, "scores": tensor, "extra_logs": {name: tensor}}``: rewards
feed the advantages, scores (in ``[0, 1]``) the dynamic filtering, and each ``extra_logs`` tensor
holds one value per query and is concatenated across calls and logged.

Groups. OpenRLHF 0.11 calls ``reward_func`` once per finished completion (``SingleTurnAgentExecutor``:
``reward_func([query], [prompt], [label])`` in a thread), and has no batched path, so a group (the
``--rollout.n_samples_per_prompt`` samples of a prompt) never reaches one call. A group reward
(`Reward.sees_groups`, e.g. `MajorityVote`) therefore raises ``ValueError`` when the adapter is built,
rather than at call time, where OpenRLHF would log the error at INFO level and train on ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from weakreward.adapters._common import (
    check_group_options,
    dedupe_groups,
    numeric_columns,
    reference_text,
    reject_token_stats,
)
from weakreward.rewards.base import Reward
from weakreward.rollouts import Rollouts, prompt_key


def split_query(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query (``prompt + response``, perhaps after padding tokens).

    The response starts after the first occurrence of ``prompt`` in ``query``; when the prompt cannot
    be found (a tokenizer round trip changed it), the whole query is the response.

    Args:
        query: The decoded prompt + response, as OpenRLHF passes it (special tokens kept).
        prompt: The prompt after the chat template; empty gives the whole query back.

    Returns:
        The text after the first occurrence of ``prompt`` in ``query``.

    Examples:
        >>> split_query("<pad>Q: 2+2?\\nA: \\\\boxed{4}<eos>", "Q: 2+2?\\nA: ")
        '\\\\boxed{4}<eos>'
    """
    if not prompt:
        return query
    at = query.find(prompt)
    return query if at < 0 else query[at + len(prompt) :]


class OpenRLHFReward:
    """A `Reward` as OpenRLHF's ``reward_func(queries, prompts, labels, **kwargs)``.

    Build it with ``reward.as_openrlhf()``. Each call splits the prompt off each query (`split_query`),
    groups completions by prompt text, takes the label as the reference (a JSON list of strings such
    as ``'["18"]'`` gives its first entry) and returns

    - ``"rewards"``: ``[B]`` float32 tensor of scores, NaN replaced by ``nan_score``;
    - ``"scores"``: the same tensor (what OpenRLHF's dynamic filtering reads);
    - ``"extra_logs"``: ``"<name>/scored"`` (1 where the reward could score the completion) and each
      numeric or boolean detail column as ``"<name>/<key>"``, one float per query (None/NaN → 0).

    OpenRLHF's ``ray.remote`` wrapper needs a plain function, so expose the adapter through one in
    the reward file (see the guide). A group reward or a reward that needs ``token_stats`` raises at
    construction.

    Args:
        reward: The reward to wrap.
        group_size: ``--rollout.n_samples_per_prompt``, to separate a prompt drawn twice into one call
            into two groups (``Rollouts.group_ids``); None groups by prompt text alone.
        nan_score: The reward OpenRLHF receives where the reward could not score a completion.

    Examples:
        >>> from weakreward.rewards.base import Reward, RewardResult
        >>> class Echo(Reward):  # 1 where the response is the label
        ...     name, needs = "echo", frozenset({"references"})
        ...     def compute(self, rollouts):
        ...         return RewardResult([float(c == r) for c, r in zip(rollouts.completions, rollouts.references)])
        >>> out = Echo().as_openrlhf()(["Q:18", "Q:7"], ["Q:", "Q:"], ["18", "18"])
        >>> out["rewards"].tolist(), sorted(out["extra_logs"])
        ([1.0, 0.0], ['echo/scored'])
    """

    def __init__(self, reward: Reward, *, group_size: int | None = None, nan_score: float = 0.0) -> None:
        if not isinstance(reward, Reward):
            raise TypeError(f"OpenRLHFReward: reward must be a weakreward Reward, got {type(reward).__name__}")
        if reward.sees_groups:
            raise ValueError(
                f"{reward.name} scores a completion against the other completions of its prompt, but OpenRLHF 0.11 "
                "calls reward_func with one completion at a time (SingleTurnAgentExecutor), so it would never see "
                "a group. Use a per-completion reward in OpenRLHF (a verifier, NoisyReward), or train the group "
                "reward with weakreward's GRPOTrainer, TRL (reward.as_trl()) or verl (GroupRewardManager)."
            )
        check_group_options("OpenRLHFReward", group_size, nan_score)
        reject_token_stats(reward, "OpenRLHF's reward_func", "OpenRLHF passes only the decoded text.")
        self.reward = reward
        self.group_size = group_size
        self.nan_score = float(nan_score)
        self.__name__ = reward.name

    def __repr__(self) -> str:
        return f"OpenRLHFReward({self.reward!r})"

    def rollouts(self, queries: Sequence[str], prompts: Sequence[Any], labels: Sequence[Any] | None) -> Rollouts:
        """The `Rollouts` that a call with these arguments scores.

        Args:
            queries: The decoded prompt + response of each completion; a non-string counts as empty.
            prompts: The prompt of each query after the chat template (non-strings go through ``str``); it is
                split off the query (`split_query`), and equal prompts form a group (split by ``group_size``).
            labels: The ``--label_key`` column, one per query, parsed by `reference_text` (a JSON list of
                strings gives its first entry); None gives no references.

        Raises:
            ValueError: ``queries``, ``prompts`` and ``labels`` differ in length.
        """
        n = len(queries)
        labels = [None] * n if labels is None else list(labels)
        if len(prompts) != n or len(labels) != n:
            raise ValueError(f"{self.__name__}: got {n} queries, {len(prompts)} prompts and {len(labels)} labels")
        prompts = [p if isinstance(p, str) else str(p) for p in prompts]
        keys = [prompt_key(p) for p in prompts]
        return Rollouts(
            prompts=tuple(prompts),
            completions=tuple(split_query(q if isinstance(q, str) else "", p) for q, p in zip(queries, prompts)),
            group_ids=tuple(dedupe_groups(keys, self.group_size)),
            references=tuple(reference_text(x, parse_json_list=True) for x in labels),
        )

    def __call__(
        self, queries: Sequence[str], prompts: Sequence[Any], labels: Sequence[Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        rollouts = self.rollouts(queries, prompts, labels)
        result = self.reward(rollouts)
        scores = torch.tensor(result.scores, dtype=torch.float32)
        rewards = torch.nan_to_num(scores, nan=self.nan_score)
        logs = {f"{self.__name__}/scored": (~torch.isnan(scores)).float()}
        for key, column in numeric_columns(result.details).items():
            logs[f"{self.__name__}/{key}"] = torch.nan_to_num(torch.tensor(column, dtype=torch.float32), nan=0.0)
        return {"rewards": rewards, "scores": rewards.clone(), "extra_logs": logs}
