"""`TrainRecipe`: what ``weakreward train CONFIG.yaml`` reads (model, rewards, data, `GRPOConfig`).

Example ``config.yaml``::

    model: smollm2-gguf                 # a Hugging Face folder/id, a .gguf file, or smollm2-gguf
    reward:                             # any weakreward reward; nested rewards are built the same way
      type: NoisyReward
      inner: {type: MathVerifier}
      flip: 0.2
    monitors:
      "true": {type: MathVerifier}      # quote "true": YAML reads a bare true as a boolean
    train_data: {builtin: arithmetic, n: 256}   # or {path: train.parquet} (verl) / {path: train.jsonl}
    grpo: {steps: 30, lr: 5.0e-4, lora: {r: 8}, beta: 0.0, run_dir: runs/arith}

A reward spec is a mapping with ``type`` (a name exported by ``weakreward``, or a dotted path
``package.module.Class`` to your own `Reward`) and the class's keyword arguments; any argument that is
itself a mapping with ``type`` is built first.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from weakreward.grpo.config import GRPOConfig
from weakreward.rewards.base import Reward


class DataSpec(BaseModel):
    """Where problems come from: a built-in task or a file."""

    model_config = ConfigDict(extra="forbid")

    builtin: str | None = Field(None, description='A built-in task: "arithmetic" (see weakreward.grpo.demo).')
    path: str | None = Field(
        None, description="A verl-style .parquet file, a .jsonl file (one problem per line) or a .json list."
    )
    n: int = Field(256, gt=0, description="Problems to generate for a built-in task.")
    seed: int = Field(0, description="Seed of a built-in task's generator.")
    limit: int | None = Field(None, gt=0, description="Keep only the first `limit` problems.")

    @field_validator("builtin")
    @classmethod
    def _builtin(cls, v: str | None) -> str | None:
        if v is not None and v != "arithmetic":
            raise ValueError(f'builtin must be "arithmetic", got {v!r}')
        return v

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("a data spec needs exactly one of builtin or path")
        return self

    def load(self, base_dir: Path | None = None) -> list[Any]:
        """The problems (dicts or `weakreward.data.Problem`)."""
        if self.builtin is not None:
            from weakreward.data import arithmetic_problems

            problems: list[Any] = arithmetic_problems(self.n, seed=self.seed)
        else:
            assert self.path is not None  # exactly one of builtin and path, validated
            path = Path(self.path)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.exists():
                raise FileNotFoundError(f"data path {path} does not exist")
            if path.suffix == ".parquet":
                from weakreward.data import load_verl_parquet

                problems = list(load_verl_parquet(path))
            elif path.suffix == ".jsonl":
                problems = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            elif path.suffix == ".json":
                problems = list(json.loads(path.read_text(encoding="utf-8")))
            else:
                raise ValueError(f"data path {path}: expected .parquet, .jsonl or .json")
        return problems[: self.limit] if self.limit else problems


def build_reward(spec: Any, where: str = "reward") -> Any:
    """Build a reward (or any argument value) from its spec; see the module docstring.

    Args:
        spec: A mapping with ``type`` (a reward class name) and its fields; nested rewards are specs too.
        where: The spec's place in the recipe, for error messages (``monitors.true``).

    Examples:
        >>> build_reward({"type": "Clip", "reward": {"type": "ExactMatch"}, "high": 1.0}).name
        'clip(exact_match)'
    """
    if isinstance(spec, list):
        return [build_reward(s, f"{where}[{i}]") for i, s in enumerate(spec)]
    if not isinstance(spec, dict) or "type" not in spec:
        return spec
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if not isinstance(name, str):
        raise ValueError(f"{where}.type must be a class name, got {name!r}")
    if "." in name:
        module, _, attr = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attr, None)
    else:
        import weakreward

        cls = getattr(weakreward, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{where}.type: {name!r} is not a class exported by weakreward (or a dotted path to one)")
    built = {k: build_reward(v, f"{where}.{k}") for k, v in kwargs.items()}
    try:
        return cls(**built)
    except TypeError as err:
        raise ValueError(f"{where}: cannot build {name}: {err}") from err


class TrainRecipe(BaseModel):
    """A whole training run for ``weakreward train``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Hugging Face folder/id (local), a .gguf path, or smollm2-gguf.")
    tokenizer: str | None = Field(None, description="Tokenizer folder; default: the model's own.")
    reward: dict[str, Any] = Field(description="The training reward spec (a mapping with type).")
    monitors: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Monitor reward specs by name.")
    eval_reward: dict[str, Any] | None = Field(
        None, description="Evaluation reward spec; default: the training reward."
    )
    train_data: DataSpec = Field(description="Training problems.")
    eval_data: DataSpec | list[DataSpec] | None = Field(
        None,
        description="Evaluation problems (used when grpo.eval_every > 0); a list is pooled into one set, e.g. "
        "the release's AIME 2024, AIME 2025, MATH-500 and AMC.",
    )
    grpo: GRPOConfig = Field(default_factory=GRPOConfig, description="The trainer's configuration.")

    @model_validator(mode="after")
    def _eval_needs_data(self) -> TrainRecipe:
        if self.grpo.eval_every and self.eval_data is None:
            raise ValueError(
                f"grpo.eval_every = {self.grpo.eval_every} but there is no eval_data: add eval_data, or set "
                "grpo.eval_every to 0"
            )
        return self

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainRecipe:
        """Read and validate a YAML file (``ValidationError`` names the bad field, e.g. ``grpo.lr``)."""
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return cls.model_validate(data)

    def eval_problems(self, base_dir: Path | None = None) -> list[Any] | None:
        """The evaluation problems: one spec's, or every spec's of a list, in order."""
        if not self.eval_data:
            return None
        specs = self.eval_data if isinstance(self.eval_data, list) else [self.eval_data]
        return [p for spec in specs for p in spec.load(base_dir)]

    def build_trainer(self, base_dir: Path | None = None) -> Any:
        """A ready `GRPOTrainer` for this recipe; relative data paths resolve against ``base_dir``."""
        from weakreward.grpo.trainer import GRPOTrainer

        reward = build_reward(self.reward)
        if not isinstance(reward, Reward):
            raise ValueError(f"reward: {self.reward.get('type')!r} did not build a Reward")
        monitors = {name: build_reward(spec, f"monitors.{name}") for name, spec in self.monitors.items()}
        tokenizer = None
        if self.tokenizer is not None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.tokenizer, local_files_only=True)
        return GRPOTrainer(
            self.model,
            reward,
            self.train_data.load(base_dir),
            tokenizer=tokenizer,
            config=self.grpo,
            eval_problems=self.eval_problems(base_dir),
            eval_reward=build_reward(self.eval_reward, "eval_reward") if self.eval_reward else None,
            monitors=monitors,
        )
