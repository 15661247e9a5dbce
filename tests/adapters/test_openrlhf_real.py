"""weakreward rewards in the real OpenRLHF 0.11: the guide's flags parsed by OpenRLHF's own argument parser,
the reward file loaded by OpenRLHF's own loader (``SingleTurnAgentExecutor``) and called as it calls it,
and the scores turned into advantages by OpenRLHF's own ``compute_advantages_and_returns`` (group_norm).
Skipped where OpenRLHF is not installed; ``make test`` installs it."""

from __future__ import annotations

import argparse
import ast
import asyncio
import importlib.util
import os
import re
import shlex
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("openrlhf")

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "other-trainers.md"


def guide_block(title: str) -> str:
    blocks = dict(re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', GUIDE.read_text(encoding="utf-8"), re.S))
    return blocks[title]


def guide_argv(title: str) -> list[str]:
    """The arguments after ``python -m <module>`` of a command in the guide."""
    words = shlex.split(guide_block(title).replace("\\\n", " "))
    return words[words.index("-m") + 2 :]


def parse_with_openrlhf(argv: list[str], monkeypatch) -> SimpleNamespace:
    """Run the ``__main__`` block of ``openrlhf/cli/train_ppo_ray.py`` (its parser and its checks of the
    parsed flags) with ``argv``, stopping where it would start training; the block is taken from the
    installed file, so the flags are checked by OpenRLHF's own code."""
    path = Path(importlib.util.find_spec("openrlhf").submodule_search_locations[0]) / "cli" / "train_ppo_ray.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    captured: dict = {}
    # the file's standard-library imports; its others (ray, vLLM engines) only serve train(), which is replaced
    namespace = {
        "argparse": argparse,
        "os": os,
        "datetime": datetime,
        "__name__": "__main__",
        "train": lambda args: captured.setdefault("args", args),
    }
    monkeypatch.setattr("sys.argv", ["train_ppo_ray.py", *argv])
    exec(compile(ast.Module(body=main.body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return captured["args"]


def test_the_guide_flags_parse_with_openrlhf_own_parser(monkeypatch) -> None:
    args = parse_with_openrlhf(guide_argv("train_openrlhf.sh"), monkeypatch)
    assert args.reward.remote_url == ["reward_func.py"]
    assert args.data.label_key == "answer"
    assert args.rollout.n_samples_per_prompt == 8
    assert args.algo.advantage.estimator == "group_norm"


def test_the_old_flags_are_gone_from_openrlhf(monkeypatch) -> None:
    with pytest.raises(SystemExit):  # argparse: unrecognized arguments
        parse_with_openrlhf(["--remote_rm_url", "reward_func.py", "--label_key", "answer"], monkeypatch)


def score_with_openrlhf(reward_path: Path, queries, prompts, labels) -> list[dict]:
    """OpenRLHF's loader, and its call: ``reward_func([query], [prompt], [label])`` once per completion."""
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=[str(reward_path)])

    async def one_at_a_time():
        calls = [executor._fetch_rewards_via_func([q], [p], [lab]) for q, p, lab in zip(queries, prompts, labels)]
        return [out[0] for out in await asyncio.gather(*calls)]

    return asyncio.run(one_at_a_time())


PROMPT = "<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n"


def test_the_guide_reward_file_loads_and_scores_through_openrlhf(tmp_path, monkeypatch) -> None:
    (tmp_path / "reward_func.py").write_text(guide_block("reward_func.py"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    responses = [r"\boxed{84}<|im_end|>", r"\boxed{85}<|im_end|>", "no idea<|im_end|>"]
    out = score_with_openrlhf(tmp_path / "reward_func.py", [PROMPT + r for r in responses], [PROMPT] * 3, ["84"] * 3)
    assert all(set(o) == {"rewards", "scores", "extra_logs"} for o in out)
    for o in out:  # the noisy reward: each score is the verifier's or its flip, and says which
        name = next(k.split("/")[0] for k in o["extra_logs"])
        assert o["rewards"].shape == (1,) and o["rewards"].item() in (0.0, 1.0)
        assert f"{name}/flipped" in o["extra_logs"]


def test_openrlhf_group_norm_advantages_of_our_scores(tmp_path, monkeypatch, openrlhf_gpu_stand_ins) -> None:
    from openrlhf.trainer.ppo_utils.experience import Experience
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker

    (tmp_path / "verify.py").write_text(
        "from weakreward import MathVerifier\n_reward = MathVerifier(workers=1).as_openrlhf()\n"
        "def reward_func(queries, prompts, labels, **kwargs):\n    return _reward(queries, prompts, labels, **kwargs)\n",
        encoding="utf-8",
    )
    responses = [r"\boxed{84}", r"so \boxed{84}", r"\boxed{85}", "no idea"]  # a group of 4: scores 1, 1, 0, 0
    out = score_with_openrlhf(tmp_path / "verify.py", [PROMPT + r for r in responses], [PROMPT] * 4, ["84"] * 4)
    rewards = torch.cat([o["rewards"] for o in out])
    assert rewards.tolist() == [1.0, 1.0, 0.0, 0.0]

    args = parse_with_openrlhf(guide_argv("train_openrlhf.sh") + ["--rollout.n_samples_per_prompt", "4"], monkeypatch)
    maker = object.__new__(RemoteExperienceMaker)  # only the advantage step: no engines, no models
    maker.strategy = SimpleNamespace(args=args)
    maker.advantage_estimator = args.algo.advantage.estimator
    maker.kl_ctl = SimpleNamespace(value=0.0)
    actions = 3
    experience = Experience(
        rewards=rewards,
        index=[0, 1, 2, 3],
        action_mask=torch.ones(4, actions, dtype=torch.bool),
        kl=torch.zeros(4, actions),
        info={},
    )
    (done,) = maker.compute_advantages_and_returns([experience])
    # group_norm by hand: mean 0.5, unbiased std sqrt(1/3); (1 - 0.5) / sqrt(1/3) = 0.8660...
    expected = torch.tensor([1.0, 1.0, -1.0, -1.0]) * (0.5 / (1 / 3) ** 0.5)
    torch.testing.assert_close(done.advantages[:, 0], expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(done.advantages, expected[:, None].expand(4, actions), rtol=1e-6, atol=1e-6)
