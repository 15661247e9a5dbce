"""`GRPOConfig`: every knob of the GRPO loop, each documented once, validated at construction.

Defaults follow the setting of arXiv 2604.18574 (group size 8, constant lr 1e-6, AdamW with weight decay
0.01, KL loss β = 0.001 with the k3 estimator, clip ε = 0.2, temperature 1.0, gradient clipping at 1.0,
verl's unbiased advantage standard deviation). `paper_config` adds the rest of the released
``scripts/rl/train.sh`` (see the docs page "Matching the paper's code"). Presets are functions returning a
config (`paper_config`; the demo's is `weakreward.grpo.demo.demo_config`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class LoRAConfig(BaseModel):
    """Low-rank adapters through peft; the KL reference is the same model with the adapter switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(16, gt=0, description="Adapter rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input (0 keeps log-probs exact).")
    target_modules: list[str] | str = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description='Module names (or peft\'s "all-linear") that get adapters.',
    )
    layers: int | list[int] | None = Field(
        None,
        description="Adapt only these layer indices, or the last N layers when an int; None = every layer. "
        "Adapting only the top layers stops the backward pass early (about half the cost of a step on the CPU).",
    )

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: int | list[int] | None) -> int | list[int] | None:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"layers must be a positive count of top layers or a list of layer indices, got {v}")
        if isinstance(v, list) and (not v or min(v) < 0):
            raise ValueError(f"layers must list non-negative layer indices, got {v}")
        return v


class GRPOConfig(BaseModel):
    """Configuration of `GRPOTrainer`.

    Every field is validated when the config is built; a bad value raises pydantic's
    ``ValidationError`` naming the field and what to change. The attribute list is generated from each
    field's ``Field(description=...)``, the one place it is documented.

    Examples:
        >>> cfg = GRPOConfig(group_size=4, prompts_per_step=2, steps=10)
        >>> cfg.group_size * cfg.prompts_per_step
        8
        >>> GRPOConfig(lr=1e-4, lora=True).lora.r
        16
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- batch and schedule -------------------------------------------------------------------------
    steps: int = Field(100, gt=0, description="Optimizer steps (rollout batches) to train for.")
    prompts_per_step: int = Field(8, gt=0, description="Distinct prompts sampled per step.")
    group_size: int = Field(
        8, description="Completions per prompt that advantages and the loss use (a GRPO group); at least 2."
    )
    n_votes: int | None = Field(
        None,
        description="Completions sampled per prompt for the reward (TTRL's n_votes_per_prompt, 16 in the "
        "release's majority-vote runs): the reward sees all of them, advantages and the loss use the first "
        "group_size; None = group_size.",
    )
    max_new_tokens: int = Field(256, gt=0, description="Longest completion, in tokens.")
    max_prompt_tokens: int | None = Field(
        None, gt=0, description="Prompts longer than this are truncated from the left; None keeps them whole."
    )
    updates_per_batch: int = Field(
        1,
        gt=0,
        description="Policy updates per rollout batch (PPO epochs). With 1 the old log-probs are the detached "
        "current ones and the token-statistics forward is reused for the loss.",
    )
    mini_batch_prompts: int | None = Field(
        None,
        gt=0,
        description="Prompts per optimizer step (verl's ppo_mini_batch_size): the batch is split in order into "
        "prompts_per_step / mini_batch_prompts updates per pass (the release's majority-vote runs: 64 / 32, "
        "two updates per step); None = one update over the whole batch.",
    )
    micro_batch_size: int | None = Field(
        None,
        gt=0,
        description="Completions per forward/backward (gradient accumulation); None = the whole batch at once.",
    )

    # -- optimiser ----------------------------------------------------------------------------------
    lr: float = Field(1e-6, gt=0, description="AdamW learning rate (LoRA typically needs 1e-4 to 1e-3).")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    grad_clip: float | None = Field(
        1.0, gt=0, description="Clip the gradient's global norm to this; None = no clipping."
    )

    # -- objective ----------------------------------------------------------------------------------
    beta: float = Field(
        0.001, ge=0, description="KL-loss coefficient; 0 loads no reference model and skips its forward."
    )
    kl_estimator: Literal["k3", "k1", "k2"] = Field(
        "k3", description="KL(π‖π_ref) estimator per token: k3 = exp(r) − r − 1 with r = log π_ref − log π."
    )
    clip_eps: float = Field(
        0.2, gt=0, lt=1, description="PPO clip range ε: the ratio is clipped to [1 − ε, 1 + ε_high]."
    )
    clip_eps_high: float | None = Field(
        None, gt=0, description="Upper clip ε_high (DAPO's clip-higher, e.g. 0.28); None = clip_eps."
    )
    dual_clip: float | None = Field(
        None,
        description="Dual-clip constant c > 1 (Ye et al. 2020): for negative advantages the loss is capped at −c·A.",
    )
    advantage_norm: Literal["group", "none", "batch"] = Field(
        "group",
        description="group: (r − mean_g) / (std_g + eps) (GRPO); none: r − mean_g (Dr. GRPO); "
        "batch: (r − mean_g) / (std over the batch + eps).",
    )
    advantage_eps: float = Field(1e-6, gt=0, description="Added to the standard deviation when normalising advantages.")
    advantage_std_ddof: Literal[0, 1] = Field(
        1,
        description="Delta degrees of freedom of the group standard deviation: 1 is verl's (the release's) "
        "unbiased std, and a group of one gets mean 0 and std 1; 0 is the population std, which makes "
        "advantages larger by sqrt(G / (G - 1)).",
    )
    loss_agg: Literal["token-mean", "micro-token-mean", "seq-mean-token-mean", "dr-grpo"] = Field(
        "token-mean",
        description="token-mean: mean over all tokens of the update; micro-token-mean: mean over micro-batches "
        "of each micro-batch's token mean (verl's token-mean as verl computes it, the release's); "
        "seq-mean-token-mean: mean over completions of each one's token mean (the paper's formula); dr-grpo: "
        "token sum / (B · max_new_tokens).",
    )

    # -- sampling -----------------------------------------------------------------------------------
    temperature: float = Field(1.0, gt=0, description="Sampling temperature; token statistics use it too.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    chat_template: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: chat-message prompts go through the tokenizer's chat template, text prompts stay raw; "
        "always: text prompts become one user message too; never: messages are joined as raw text.",
    )
    engine: Literal["auto", "static", "hf", "cuda-graph"] = Field(
        "auto",
        description='Rollout engine: "static" is the static-KV-cache engine (a CUDA graph on CUDA; "cuda-graph" is '
        'an alias), "hf" wraps model.generate, "auto" picks "static" for the llama family and "hf" otherwise.',
    )
    rollout_dtype: Literal["auto", "policy", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Compute dtype of the static engine's rollouts. \"policy\": the policy's own dtype (its parameters "
        'are read in place); "auto": bfloat16 on CUDA, as the paper\'s verl rolls out in bfloat16 with vLLM, and the '
        "policy's dtype on the CPU. bfloat16 on a CPU with AVX512-BF16 or AMX decodes about 1.5-2x as fast, but "
        "the loss then needs its own training forward (see rollout_activations). Log-probs of the loss always "
        "come from the policy in its own dtype.",
    )
    rollout_activations: Literal["auto", "never"] = Field(
        "auto",
        description="auto: when a batch is trained on once (updates_per_batch = 1, one mini-batch and one "
        "micro-batch, every sample trained on) and the static engine runs eagerly in the policy's own dtype (the "
        "CPU; full fine-tuning or LoRA of Llama, SmolLM or Qwen2), the loss's log-probs and gradient come from the "
        "activations and logits the rollout computed (weakreward.rollout.tape): the same values, with no training "
        "forward pass; never: always run the training forward through the model.",
    )

    # -- model --------------------------------------------------------------------------------------
    lora: LoRAConfig | None = Field(
        None,
        description="LoRA adapters (a mapping of LoRAConfig fields, or true for the defaults); None = full fine-tuning.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Parameter dtype of the policy.")
    autocast: Literal["cuda", "always", "never"] = Field(
        "cuda",
        description="With float32 parameters, run the training forward passes under bf16 autocast (float32 master "
        'weights and float32 token statistics): "cuda" on CUDA only (the paper\'s verl computes in bf16 there), '
        '"always" on the CPU too (about 1.5-2x faster than a float32 forward where the CPU has AVX512-BF16 or AMX, '
        'but in float32 the CPU skips the training forward: see rollout_activations), "never". true and false read '
        'as "cuda" and "never".',
    )
    cpu_linear: Literal["onednn", "torch"] = Field(
        "onednn",
        description="Float32 linear layers of the training forward and backward (and of the HF engine's rollouts) on "
        'the CPU: "onednn" runs their '
        "products in oneDNN (weakreward.kernels.linear; 1.7-2.0x Intel MKL's GEMM on the project's AMD CPU, the "
        'same float32 products summed in another order), "torch" leaves them to F.linear (MKL). A torch build '
        "without oneDNN's linear, bf16 autocast and CUDA always use F.linear.",
    )
    device: str = Field("auto", description='"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".')
    seed: int = Field(0, description="Seeds the problem order, sampling and every RNG the trainer owns.")

    # -- evaluation ---------------------------------------------------------------------------------
    eval_every: int = Field(0, ge=0, description="Evaluate every k steps (and after the last); 0 = never.")
    eval_samples: int = Field(4, gt=0, description="Completions per evaluation problem (n of avg@n and pass@k).")
    eval_temperature: float | None = Field(None, gt=0, description="Evaluation temperature; None = temperature.")

    # -- output -------------------------------------------------------------------------------------
    run_dir: str = Field("runs/grpo", description="Folder for metrics.jsonl, checkpoints/ and the final weights.")
    save_every: int = Field(
        50, ge=0, description="Checkpoint every k steps (and after the last); 0 = only after the last."
    )
    keep_checkpoints: int = Field(2, gt=0, description="How many recent checkpoints to keep.")
    resume: str | None = Field(
        None,
        description='"latest" continues from the newest checkpoint in run_dir (starts fresh if none); '
        "a path resumes from that checkpoint folder; None starts fresh (see overwrite).",
    )
    overwrite: bool = Field(
        False,
        description="With resume=None, replace an earlier run in run_dir (its metrics.jsonl and checkpoints/); "
        "False refuses to start over one.",
    )
    progress: bool = Field(True, description="Show a tqdm progress bar on stderr.")

    # -- validators ---------------------------------------------------------------------------------
    @field_validator("autocast", mode="before")
    @classmethod
    def _autocast(cls, v: Any) -> Any:
        return {True: "cuda", False: "never"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("group_size")
    @classmethod
    def _group_size(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"group_size must be at least 2 (GRPO compares completions within a group), got {v}")
        return v

    @field_validator("lora", mode="before")
    @classmethod
    def _lora_bool(cls, v: Any) -> Any:
        if v is True:
            return LoRAConfig()
        if v is False:
            return None
        return v

    @field_validator("dual_clip")
    @classmethod
    def _dual_clip(cls, v: float | None) -> float | None:
        if v is not None and not v > 1:
            raise ValueError(f"dual_clip must be > 1 (e.g. 3.0) or None to disable it, got {v}")
        return v

    @field_validator("adam_betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"adam_betas must both lie in [0, 1), got {v}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        head = v.split(":")[0]
        if head not in {"auto", "cpu", "cuda", "mps"}:
            raise ValueError(f'device must be "auto", "cpu", "cuda", "cuda:N" or "mps", got {v!r}')
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> GRPOConfig:
        if self.clip_eps_high is not None and self.clip_eps_high < self.clip_eps:
            raise ValueError(
                f"clip_eps_high ({self.clip_eps_high}) is below clip_eps ({self.clip_eps}): raise clip_eps_high to at "
                "least clip_eps, or set it to None to clip symmetrically"
            )
        if self.n_votes is not None and self.n_votes < self.group_size:
            raise ValueError(
                f"n_votes ({self.n_votes}) is below group_size ({self.group_size}): the reward votes over at least "
                "the trained completions; raise n_votes or set it to None"
            )
        if self.mini_batch_prompts is not None and self.prompts_per_step % self.mini_batch_prompts:
            raise ValueError(
                f"mini_batch_prompts ({self.mini_batch_prompts}) must divide prompts_per_step ({self.prompts_per_step})"
            )
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) exceeds steps ({self.steps}): lower warmup_steps")
        return self

    @property
    def batch_size(self) -> int:
        """Completions per step: ``prompts_per_step * group_size``."""
        return self.prompts_per_step * self.group_size

    @property
    def votes_per_prompt(self) -> int:
        """Completions sampled per prompt: ``n_votes``, or ``group_size`` when it is None."""
        return self.group_size if self.n_votes is None else self.n_votes

    def trained_rows(self, prompts: int) -> list[int]:
        """Rows (of ``prompts × votes_per_prompt`` sampled completions, grouped by prompt) that advantages
        and the loss use: the first ``group_size`` of each prompt, as TTRL's ``select_top_k_per_prompt``.

        Examples:
            >>> GRPOConfig(group_size=2, n_votes=3).trained_rows(2)
            [0, 1, 3, 4]
        """
        n, g = self.votes_per_prompt, self.group_size
        return [p * n + j for p in range(prompts) for j in range(g)]

    def mini_batches(self, prompts: int) -> list[slice]:
        """Trained rows of each optimizer step: consecutive runs of ``mini_batch_prompts × group_size``
        (verl splits the batch in order into ``ppo_mini_batch_size`` mini-batches).

        Examples:
            >>> GRPOConfig(group_size=2, prompts_per_step=4, mini_batch_prompts=2).mini_batches(4)
            [slice(0, 4, None), slice(4, 8, None)]
        """
        per = (self.mini_batch_prompts or prompts) * self.group_size
        total = prompts * self.group_size
        return [slice(i, min(i + per, total)) for i in range(0, total, per)]


def _document_fields(cls: type[BaseModel]) -> None:
    """Insert an ``Attributes:`` section, built from the fields' descriptions and defaults, before ``Examples:``."""
    lines = ["Attributes:"]
    for name, info in cls.model_fields.items():
        default = repr(info.get_default(call_default_factory=True))
        kind = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        lines.append(f"    {name} ({kind}): {info.description} Default: ``{default}``.")
    section = "\n".join("    " + line for line in lines) + "\n\n    "
    doc = cls.__doc__ or ""
    cls.__doc__ = (
        doc.replace("Examples:", section.lstrip() + "Examples:", 1)
        if "Examples:" in doc
        else doc.rstrip() + "\n\n" + section
    )


_document_fields(GRPOConfig)
_document_fields(LoRAConfig)


def paper_config(**overrides: Any) -> GRPOConfig:
    """The setting of the paper's released ``scripts/rl/train.sh`` (arXiv 2604.18574, verl GRPO).

    Full fine-tuning; 64 prompts per step and group size 8 (one update per step: the mini-batch is the
    whole batch); completions up to 2048 tokens; AdamW, lr 1e-6 constant; KL loss β = 0.001 with verl's
    ``low_var_kl`` (k3, clamped); clip ε = 0.2 with verl's default dual-clip c = 3; temperature 1.0;
    gradient clipping at 1.0; advantages with verl's unbiased std (``ddof=1``); loss aggregated as verl's
    ``token-mean`` per micro-batch (``micro-token-mean``) over micro-batches of 8 completions (the
    release's 8 per GPU on 4 GPUs gives the same 64 equal terms); evaluation every 25 steps (``test_freq``).
    The majority-vote runs add ``n_votes=16`` and ``mini_batch_prompts=32`` (two updates per step): see
    `majority_vote_overrides`.

    Examples:
        >>> cfg = paper_config(steps=5)
        >>> cfg.loss_agg, cfg.dual_clip, cfg.max_new_tokens, cfg.advantage_std_ddof
        ('micro-token-mean', 3.0, 2048, 1)
        >>> paper_config(**majority_vote_overrides()).n_votes
        16
    """
    base: dict[str, Any] = {
        "group_size": 8,
        "prompts_per_step": 64,
        "max_new_tokens": 2048,
        "lr": 1e-6,
        "lr_schedule": "constant",
        "beta": 0.001,
        "kl_estimator": "k3",
        "clip_eps": 0.2,
        "dual_clip": 3.0,
        "temperature": 1.0,
        "grad_clip": 1.0,
        "advantage_norm": "group",
        "advantage_std_ddof": 1,
        "loss_agg": "micro-token-mean",
        "micro_batch_size": 8,
        "eval_every": 25,
        "save_every": 50,
    }
    base.update(overrides)
    return GRPOConfig(**base)


def majority_vote_overrides() -> dict[str, Any]:
    """What the release changes for its majority-vote runs (``TTRL_N_VOTES_PER_PROMPT=16``,
    ``TTRL_N_SAMPLES_PER_PROMPT=8``, ``PPO_MINI_BATCH=32``): vote over 16 samples, train on the first 8,
    two updates of 32 prompts per step.

    Examples:
        >>> majority_vote_overrides()
        {'n_votes': 16, 'group_size': 8, 'mini_batch_prompts': 32}
    """
    return {"n_votes": 16, "group_size": 8, "mini_batch_prompts": 32}
