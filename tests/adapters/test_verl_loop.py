"""weakreward rewards inside the real verl 0.9 reward loop: rows of the paper's files read by verl's own
dataset loader, batched as a ``DataProto``, scored by verl's ``RewardLoopWorker`` with its ``naive`` and
``dapo`` managers and with weakreward's `GroupRewardManager`, and once through ``RewardLoopManager`` with
Ray and two workers. Skipped where verl is not installed; ``make test`` installs it."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verl")

from weakreward import MajorityVote, MathVerifier  # noqa: E402
from weakreward.adapters.verl import VerlReward  # noqa: E402
from weakreward.data.parquet import decode_ground_truth  # noqa: E402
from weakreward.rewards.exact_match import ExactMatch  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MATH = FIXTURES / "verl_rows_math.parquet"
NOISY = FIXTURES / "verl_rows_math_noisy.parquet"
N = 4  # actor_rollout_ref.rollout.n

REWARDS = """
from weakreward import MajorityVote, MathVerifier, NoisyReward

verifier = MathVerifier(workers=1)
compute_score = verifier.as_verl()
compute_score_noisy = NoisyReward(verifier, flip=0.5, level="prompt", seed=8).as_verl()
compute_score_vote = MajorityVote(verifier).as_verl()
not_weakreward = lambda **kwargs: 0.0
"""

GROUP_MANAGER = [
    "reward.reward_manager.source=importlib",
    "reward.reward_manager.name=GroupRewardManager",
    "reward.reward_manager.module.path=pkg://weakreward.adapters.verl_manager",
]


def answer_of(row: dict) -> str:
    return decode_ground_truth(row["reward_model"]["ground_truth"])[0]


def responses(row: dict, k: int) -> str:
    """The k-th of N rollouts of a row: the label boxed twice, a wrong boxed answer, nothing."""
    return [f"so the answer is \\boxed{{{answer_of(row)}}}", f"\\boxed{{{answer_of(row)}}}", r"\boxed{-12345}", ""][k]


def overrides(tokenizer_dir: Path, path: Path, name: str, *extra: str) -> list[str]:
    return [
        f"actor_rollout_ref.model.path={tokenizer_dir}",
        f"actor_rollout_ref.rollout.n={N}",
        f"reward.custom_reward_function.path={path}",
        f"reward.custom_reward_function.name={name}",
        *extra,
    ]


def references(batch) -> list[str]:
    return [answer_of({"reward_model": rm}) for rm in batch.non_tensor_batch["reward_model"]]


@pytest.fixture(autouse=True)
def event_loop():
    """A fresh event loop for each test, closed after it: verl's workers take the thread's current loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=1)
    yield v
    v.close()


@pytest.mark.parametrize("manager", ["naive", "dapo"])
@pytest.mark.parametrize("path", [MATH, NOISY], ids=["math", "math_noisy"])
def test_verl_managers_score_the_loaded_rows_as_the_verifier_does(
    manager, path, verl_config, verl_batch, run_worker, reward_file, tokenizer_dir, verifier
) -> None:
    batch = verl_batch([path], responses, N)
    config = verl_config(
        overrides(tokenizer_dir, reward_file(REWARDS), "compute_score", f"reward.reward_manager.name={manager}")
    )
    out = run_worker(config, batch)
    direct = verifier.score(batch.meta_info["responses"], references=references(batch))
    np.testing.assert_array_equal([o["reward_score"] for o in out], direct.scores)
    assert [o["reward_score"] for o in out][:N] == [1.0, 1.0, 0.0, 0.0]  # by hand: label twice, wrong, none
    assert [o["reward_extra_info"]["reason"] for o in out] == list(direct.details["reason"])


def test_verl_default_is_replaced_by_our_function_only_under_the_reward_keys(
    verl_config, verl_batch, run_worker, reward_file, tokenizer_dir
) -> None:
    """verl 0.9 reads ``reward.custom_reward_function``; the legacy top-level key leaves verl's default."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    path = reward_file(REWARDS)
    ours = verl_config(overrides(tokenizer_dir, path, "compute_score"))
    legacy = verl_config(
        [
            f"custom_reward_function.path={path}",
            "custom_reward_function.name=compute_score",
            f"actor_rollout_ref.model.path={tokenizer_dir}",
        ]
    )
    assert isinstance(get_custom_reward_fn(ours).args[0], VerlReward)
    assert get_custom_reward_fn(legacy) is None  # verl would score with its own default_compute_score
    batch = verl_batch([MATH], responses, N)
    out = run_worker(ours, batch)
    assert "scored" in out[0]["reward_extra_info"]  # only weakreward's result carries "scored"


def flips_by_prompt(batch, out) -> dict[str, set]:
    by_prompt: dict[str, set] = defaultdict(set)
    for prompt, o in zip(batch.non_tensor_batch["raw_prompt"], out):
        by_prompt[str(list(prompt))].add(o["reward_extra_info"]["flipped"])
    return by_prompt


@pytest.mark.parametrize("manager", [["reward.reward_manager.name=naive"], GROUP_MANAGER], ids=["naive", "group"])
def test_prompt_level_noise_is_constant_across_rows_and_steps(
    manager, verl_config, verl_batch, run_worker, reward_file, tokenizer_dir
) -> None:
    config = verl_config(overrides(tokenizer_dir, reward_file(REWARDS), "compute_score_noisy", *manager))
    seen: dict[str, set] = defaultdict(set)
    for step in (1, 2):
        batch = verl_batch([MATH, MATH], responses, N)  # each prompt twice per step: 2 rows, 8 completions
        for info in batch.non_tensor_batch["extra_info"]:
            info["global_steps"] = step  # verl merges per-step fields into extra_info
        for prompt, flips in flips_by_prompt(batch, run_worker(config, batch)).items():
            seen[prompt] |= flips
    assert len(seen) == 3 and all(len(flips) == 1 for flips in seen.values())
    assert {f for (f,) in seen.values()} == {True, False}  # and the noise differs between prompts (seed 8)


def test_group_manager_sees_the_real_prompt_and_verl_uid(
    verl_config, verl_batch, run_worker, reward_file, tokenizer_dir
) -> None:
    code = REWARDS + (
        "\nfrom weakreward.rewards.base import Reward, RewardResult\n"
        "class Spy(Reward):\n"
        "    name, needs, sees_groups = 'spy', frozenset(), True\n"
        "    def compute(self, rollouts):\n"
        "        return RewardResult([0.0] * len(rollouts), {'prompt': [p[-1]['content'] for p in rollouts.prompts],\n"
        "                                                    'group': list(rollouts.group_ids)})\n"
        "compute_score_spy = Spy().as_verl()\n"
    )
    config = verl_config(overrides(tokenizer_dir, reward_file(code), "compute_score_spy", *GROUP_MANAGER))
    batch = verl_batch([MATH], responses, N)
    out = run_worker(config, batch)
    assert [o["reward_extra_info"]["prompt"] for o in out] == [
        p[-1]["content"] for p in batch.non_tensor_batch["raw_prompt"]
    ]
    assert [o["reward_extra_info"]["group"] for o in out] == list(batch.non_tensor_batch["uid"])


def test_majority_vote_in_the_group_manager_equals_the_direct_call(
    verl_config, verl_batch, run_worker, reward_file, tokenizer_dir, verifier
) -> None:
    config = verl_config(overrides(tokenizer_dir, reward_file(REWARDS), "compute_score_vote", *GROUP_MANAGER))
    batch = verl_batch([NOISY], responses, N)
    order = np.random.default_rng(0).permutation(len(batch))  # verl's balancing reorders the batch
    batch = batch.select_idxs(order)
    batch.meta_info["responses"] = [batch.meta_info["responses"][i] for i in order]
    out = run_worker(config, batch)
    direct = MajorityVote(verifier).score(batch.meta_info["responses"], group_ids=list(batch.non_tensor_batch["uid"]))
    np.testing.assert_array_equal([o["reward_score"] for o in out], direct.scores)
    assert [o["reward_extra_info"]["pseudo_label"] for o in out] == list(direct.details["pseudo_label"])
    # by hand: each group votes its label (2 of 4), so the two boxed labels score 1; a corrupted label changes nothing
    labels = references(batch)
    assert [o["reward_extra_info"]["pseudo_label"] for o in out] == labels


def test_a_group_arriving_one_row_at_a_time_is_scored_when_its_last_row_arrives(
    verl_config, verl_batch, reward_file, tokenizer_dir
) -> None:
    """verl's agent loop streams each finished completion to a worker's ``compute_score`` on its own."""
    from verl.experimental.reward_loop import RewardLoopWorker

    config = verl_config(overrides(tokenizer_dir, reward_file(REWARDS), "compute_score_vote", *GROUP_MANAGER))
    batch = verl_batch([MATH], responses, N)
    worker = RewardLoopWorker(config)

    async def stream():
        return await asyncio.gather(*(worker.compute_score(batch.select_idxs([i])) for i in range(len(batch))))

    streamed = worker.loop.run_until_complete(stream())
    chunked = worker.loop.run_until_complete(worker.compute_score_batch(batch))
    assert [o["reward_score"] for o in streamed] == [o["reward_score"] for o in chunked]


def test_an_incomplete_group_fails_after_the_timeout_naming_the_setting(
    verl_config, verl_batch, reward_file, tokenizer_dir
) -> None:
    from verl.experimental.reward_loop import RewardLoopWorker

    config = verl_config(
        overrides(
            tokenizer_dir,
            reward_file(REWARDS),
            "compute_score_vote",
            *GROUP_MANAGER,
            "+reward.reward_kwargs.group_timeout_s=0.2",
        )
    )
    worker = RewardLoopWorker(config)
    batch = verl_batch([MATH], responses, N)
    with pytest.raises(TimeoutError, match=r"got 1 of its 4 completions.*reward\.num_workers=1"):
        worker.loop.run_until_complete(worker.compute_score(batch.select_idxs([0])))


def test_group_manager_refuses_a_function_that_is_not_a_weakreward_reward(
    verl_config, run_worker, reward_file, tokenizer_dir
) -> None:
    from verl.experimental.reward_loop import RewardLoopWorker

    config = verl_config(overrides(tokenizer_dir, reward_file(REWARDS), "not_weakreward", *GROUP_MANAGER))
    with pytest.raises(ValueError, match=r"reward\.custom_reward_function\.path"):
        RewardLoopWorker(config)


@pytest.mark.parametrize("name", ["graph_train", "graph_noisy", "science_map", "math_noisy"])
def test_data_to_verl_output_loads_with_verl_loader_and_scores(
    name, tmp_path, verl_config, verl_batch, run_worker, reward_file, tokenizer_dir
) -> None:
    from weakreward.cli import main
    from weakreward.data.parquet import load_verl_parquet

    source, target = FIXTURES / "verl" / f"{name}.parquet", tmp_path / f"{name}.verl.parquet"
    assert main(["data", "to-verl", str(source), str(target)]) == 0
    originals = load_verl_parquet(source, raw=True)
    batch = verl_batch([target], lambda row, k: rf"\boxed{{{row['reward_model']['ground_truth']}}}", 1)
    assert len(batch) == len(originals)
    truths = [r["ground_truth"] for r in batch.non_tensor_batch["reward_model"]]
    assert truths == [decode_ground_truth(r["reward_model"]["ground_truth"])[0] for r in originals]
    assert all(isinstance(info, dict) and info["index"] is not None for info in batch.non_tensor_batch["extra_info"])
    config = verl_config(
        overrides(tokenizer_dir, reward_file(REWARDS), "compute_score", "actor_rollout_ref.rollout.n=1")
    )
    out = run_worker(config, batch)
    assert [o["reward_extra_info"]["scored"] for o in out] == [True] * len(out)


def test_verl_loader_cannot_read_the_paper_graph_file_as_released(verl_batch) -> None:
    with pytest.raises(AttributeError):  # verl calls extra_info.get on the JSON string
        verl_batch([FIXTURES / "verl" / "graph_train.parquet"], responses, 1)


def test_old_prime_manager_reads_our_score_through_result_0() -> None:
    from verl.workers.reward_manager.prime import run_reward_scoring

    fn = ExactMatch().as_verl()
    scores = run_reward_scoring(fn, [r"\boxed{4}", r"\boxed{5}"], ["4", "4"], ["d", "d"], num_processes=1)
    assert scores == [1.0, 0.0]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_majority_vote_in_ray_reward_loop_manager_with_two_workers(
    ray_local, verl_config, verl_batch, reward_file, tokenizer_dir, verifier
) -> None:
    from verl.experimental.reward_loop import RewardLoopManager

    path = reward_file(REWARDS)
    config = verl_config(overrides(tokenizer_dir, path, "compute_score_vote", *GROUP_MANAGER, "reward.num_workers=2"))
    manager = RewardLoopManager(config)
    batch = verl_batch([MATH, MATH], responses, N)  # 6 groups of 4: each worker gets 3 whole groups
    out = manager.compute_rm_score(batch)
    direct = MajorityVote(verifier).score(batch.meta_info["responses"], group_ids=list(batch.non_tensor_batch["uid"]))
    np.testing.assert_array_equal(out.batch["rm_scores"].sum(-1).numpy(), direct.scores)
    pseudo = list(out.non_tensor_batch["pseudo_label"])
    assert pseudo == list(direct.details["pseudo_label"])  # pseudo-label agreement 24/24
    assert sorted(out.meta_info["reward_extra_keys"]) == sorted(out.non_tensor_batch)

    split = verl_batch([MATH], responses, N)  # 3 groups of 4 over 2 workers: 6 rows each, a group is cut
    with pytest.raises(Exception, match=r"reward\.num_workers=1"):
        manager.compute_rm_score(split)
