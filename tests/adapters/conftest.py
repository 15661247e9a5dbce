"""What the adapter tests against the real verl 0.9 and OpenRLHF 0.11 share: a tokenizer folder, verl's own
config with overrides, batches built by verl's own dataset loader, and a stand-in for flash-attn.

The tests import verl and OpenRLHF through ``pytest.importorskip``; ``make test`` installs both (see the
Makefile), so they run in CI.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# -- OpenRLHF's GPU-only imports -------------------------------------------------------------------------
# OpenRLHF 0.11's advantage code sits in modules that import flash-attn (no CPU build), DeepSpeed and vLLM at
# module level. The tests never call into them, so a stand-in module answers every attribute with a
# placeholder class; a call into one raises.

STAND_IN_PACKAGES = ("flash_attn", "deepspeed", "vllm")


class _Placeholder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a GPU-only stand-in of the OpenRLHF tests was called")

    def __class_getitem__(cls, item: Any) -> Any:
        return cls


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Placeholder,), {})


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname.split(".")[0] in self.packages:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        return _StandInModule(spec.name)

    def exec_module(self, module: Any) -> None:
        module.__path__ = []

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = frozenset(packages)


def install_gpu_stand_ins() -> None:
    """Stand in for each of `STAND_IN_PACKAGES` that is not installed (idempotent)."""
    missing = [p for p in STAND_IN_PACKAGES if p not in sys.modules and importlib.util.find_spec(p) is None]
    if missing and not any(isinstance(f, _StandInFinder) for f in sys.meta_path):
        sys.meta_path.append(_StandInFinder(missing))


@pytest.fixture
def openrlhf_gpu_stand_ins():
    """The stand-ins for one test, removed after it together with every module imported on top of them
    (other libraries probe for vLLM or DeepSpeed with ``find_spec`` and must not find a stand-in)."""
    pytest.importorskip("openrlhf")
    before = set(sys.modules)
    finders = list(sys.meta_path)
    install_gpu_stand_ins()
    yield
    sys.meta_path[:] = finders
    for name in set(sys.modules) - before:
        if name.split(".")[0] in (*STAND_IN_PACKAGES, "openrlhf"):
            del sys.modules[name]


# -- verl ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A folder verl's ``hf_tokenizer`` loads: weakreward's character tokenizer (no download)."""
    from weakreward.models import char_tokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    char_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _verl_config(overrides: Sequence[str]) -> Any:
    """verl 0.9's full trainer config (its generated ``ppo_trainer`` YAML) with ``key=value`` overrides, as
    ``python -m verl.trainer.main_ppo key=value ...`` composes it (hydra's override grammar is not needed
    for plain ``key=value``; hydra's ``+key=value``, adding a key, becomes ``key=value``)."""
    import verl
    from omegaconf import OmegaConf

    base = OmegaConf.load(Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml")
    return OmegaConf.merge(base, OmegaConf.from_dotlist([o.removeprefix("+") for o in overrides]))


@pytest.fixture
def reward_file(tmp_path) -> Callable[[str], Path]:
    """Write a reward file (the file ``reward.custom_reward_function.path`` names) and return its path."""

    def write(code: str) -> Path:
        path = tmp_path / f"rewards_{uuid.uuid4().hex[:8]}.py"
        path.write_text(code, encoding="utf-8")
        return path

    return write


def _verl_batch(
    files: Sequence[Path | str],
    tokenizer: Any,
    tokenizer_dir: Path,
    responses: Callable[[dict, int], str],
    n: int,
    cache_dir: Path,
) -> Any:
    """A training batch as verl's trainer hands it to the reward loop: rows read by verl's ``RLHFDataset``
    and ``collate_fn``, a fresh ``uid`` per row, repeated ``n`` times (``repeat(interleave=True)``), and the
    ``prompts``/``responses``/``attention_mask`` tensors of a rollout whose k-th response to a row is
    ``responses(row, k)``."""
    import torch
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    config = _verl_config([f"actor_rollout_ref.model.path={tokenizer_dir}", f"data.cache_dir={cache_dir}"])
    dataset = RLHFDataset(data_files=[str(f) for f in files], tokenizer=tokenizer, config=config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(len(batch))], dtype=object)
    batch = batch.repeat(n, interleave=True)
    texts = []
    for i in range(len(batch)):
        row = {k: v[i] for k, v in batch.non_tensor_batch.items()}
        texts.append(responses(row, i % n))
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    prompt_len, response_len = 3, max(map(len, ids)) + 2
    pad = tokenizer.pad_token_id
    response_ids = torch.full((len(ids), response_len), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), prompt_len + response_len), dtype=torch.long)
    mask[:, :prompt_len] = 1
    for i, seq in enumerate(ids):
        response_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, prompt_len : prompt_len + len(seq)] = 1
    tensors = {
        "prompts": torch.full((len(ids), prompt_len), pad, dtype=torch.long),
        "responses": response_ids,
        "attention_mask": mask,
    }
    batch = batch.union(DataProto.from_dict(tensors=tensors))
    batch.meta_info["responses"] = texts  # what the rollout said, for the tests' direct calls
    return batch


def _run_worker(config: Any, batch: Any) -> list[dict]:
    """verl's ``RewardLoopWorker`` built from ``config`` (in this process), scoring ``batch`` as its Ray
    actor does (``compute_score_batch``: one concurrent ``run_single`` per completion)."""
    from verl.experimental.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(config)
    return worker.loop.run_until_complete(worker.compute_score_batch(batch))


@pytest.fixture
def verl_config() -> Callable[[Sequence[str]], Any]:
    """`_verl_config`: verl's trainer config with overrides."""
    pytest.importorskip("verl")
    return _verl_config


@pytest.fixture
def verl_batch(tokenizer, tokenizer_dir, tmp_path) -> Callable[..., Any]:
    """`_verl_batch` bound to the test tokenizer: ``verl_batch(files, responses, n)``."""
    pytest.importorskip("verl")

    def build(files: Sequence[Path | str], responses: Callable[[dict, int], str], n: int) -> Any:
        return _verl_batch(files, tokenizer, tokenizer_dir, responses, n, tmp_path / "verl_cache")

    return build


@pytest.fixture
def run_worker(monkeypatch) -> Callable[[Any, Any], list[dict]]:
    """`_run_worker`: verl's real ``RewardLoopWorker`` scoring a batch in this process."""
    pytest.importorskip("verl")
    return _run_worker
