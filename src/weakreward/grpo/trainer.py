"""`GRPOTrainer`: the lean GRPO loop (Shao et al. 2024) with weak rewards, monitors and crash-safe runs.

One step, top to bottom (`GRPOTrainer.train_step`):

1. **rollout**: ``prompts_per_step`` problems, each repeated ``group_size`` times, through the rollout
   engine (`weakreward.rollout`: the static-KV engine for the llama family, which prefills each prompt
   once per group; HF ``generate`` otherwise);
2. **token statistics**: one forward pass over prompt + completion (each group's prompt computed once,
   `completion_token_stats`) gives the sampled tokens' log-probs and `TokenStats` (entropy,
   self-certainty), so proxy rewards cost nothing extra; with one update per batch this forward's graph
   is kept and reused for the loss;
3. **reward**: `Rollouts` → the training reward and every monitor reward (never trained on);
4. **advantages**: group-normalised (`group_advantages`);
5. **loss/backward**: clipped surrogate + β·KL(k3) (`policy_loss`), gradient accumulation over
   micro-batches, ``updates_per_batch`` times;
6. **clip/step**: gradient-norm clipping, AdamW, learning-rate schedule, engine weight sync;
7. **log/checkpoint**: one line of ``metrics.jsonl``, callbacks, periodic evaluation and checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weakreward.data.problem import Problem
from weakreward.grpo.callbacks import Callback
from weakreward.grpo.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from weakreward.grpo.config import GRPOConfig
from weakreward.grpo.evaluation import eval_metrics
from weakreward.grpo.forward import completion_token_stats
from weakreward.grpo.loss import group_advantages, policy_loss
from weakreward.grpo.metrics import MetricsWriter, read_metrics
from weakreward.kernels.linear import onednn_linear
from weakreward.kernels.token_stats import token_stats_from_logits
from weakreward.models import chat_text
from weakreward.rewards.base import Reward, RewardResult
from weakreward.rollout.engine import Generation, RolloutEngine
from weakreward.rollout.selection import make_engine
from weakreward.rollout.static import StaticEngine
from weakreward.rollouts import Prompt, Rollouts, TokenStats, prompt_key

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _as_problem(item: Any, index: int) -> Problem:
    """A training problem from a `weakreward.data.Problem`, a dataclass, a pydantic model or a dict with
    ``prompt`` and ``answer`` (other keys become `Rollouts.extras` columns)."""
    if not isinstance(item, (Problem, Mapping)):
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            item = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        elif hasattr(item, "model_dump"):
            item = item.model_dump()
        elif hasattr(item, "__dict__"):
            item = dict(vars(item))
        else:
            raise TypeError(f"train problem {index} is a {type(item).__name__}; pass dicts with 'prompt' and 'answer'")
    if isinstance(item, Mapping) and item.get("answer") is not None:
        item = {**item, "answer": str(item["answer"])}  # a numeric label such as 4 is the reference "4"
    try:
        return Problem.from_dict(item)
    except (TypeError, ValueError) as err:
        raise type(err)(f"train problem {index}: {err}") from None


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _select_generation(gen: Generation, rows: Sequence[int]) -> Generation:
    """The rows ``rows`` of a `Generation` (the trained subset of the sampled completions)."""
    index = torch.as_tensor(list(rows), dtype=torch.long, device=gen.completion_ids.device)
    return Generation(
        prompt_ids=gen.prompt_ids[index],
        prompt_mask=gen.prompt_mask[index],
        completion_ids=gen.completion_ids[index],
        completion_mask=gen.completion_mask[index],
        completions=[gen.completions[i] for i in rows],
    )


def _shifted(batches: list[slice], offset: int) -> list[slice]:
    return [slice(r.start + offset, r.stop + offset) for r in batches]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(values.dtype)
    return float((values * m).sum() / m.sum().clamp(min=1.0))


class GRPOTrainer:
    """Group Relative Policy Optimisation with any `Reward`, plus monitors the policy never sees.

    Args:
        model: A Hugging Face id or folder (local files only), a ``.gguf`` file, ``"smollm2-gguf"`` (the
            embedded demo model), or a loaded causal LM (then ``tokenizer`` is required).
        reward: The training reward.
        train_problems: `weakreward.data.Problem` objects or dicts with ``prompt`` (text or chat
            messages) and ``answer`` (the reference; may be None for label-free rewards); other fields
            become `Rollouts.extras` columns.
        tokenizer: The tokenizer; loaded with the model when None.
        config: `GRPOConfig` (default: the paper's setting).
        eval_problems: Problems for evaluation every ``config.eval_every`` steps (avg@n, pass@k).
        eval_reward: The reward evaluation scores with (default: ``reward``; pass the true verifier when
            training under a weak reward).
        monitors: Rewards computed on every batch and logged as ``monitor/<name>/...``, never trained on
            (e.g. ``{"true": MathVerifier()}`` under a noisy or majority-vote reward).
        callbacks: `Callback` objects (e.g. the saturation tracker).
        engine: A ready `RolloutEngine`; by default one is built from ``config.engine``.

    Examples:
        >>> import tempfile
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> from weakreward.rewards.base import Reward, RewardResult
        >>> class Short(Reward):
        ...     def compute(self, r): return RewardResult(np.array([float(len(c) < 3) for c in r.completions]))
        >>> tok = char_tokenizer()
        >>> cfg = GRPOConfig(steps=1, group_size=2, prompts_per_step=1, max_new_tokens=4, lr=1e-3,
        ...                  run_dir=tempfile.mkdtemp(), progress=False)
        >>> trainer = GRPOTrainer(tiny_llama(tok), Short(), [{"prompt": "1+1=", "answer": "2"}], tokenizer=tok, config=cfg)
        >>> [m["step"] for m in trainer.train()]
        [1]
    """

    def __init__(
        self,
        model: Any,
        reward: Reward,
        train_problems: Iterable[Any],
        *,
        tokenizer: Any | None = None,
        config: GRPOConfig | None = None,
        eval_problems: Iterable[Any] | None = None,
        eval_reward: Reward | None = None,
        monitors: Mapping[str, Reward] | None = None,
        callbacks: Sequence[Callback] = (),
        engine: RolloutEngine | None = None,
    ) -> None:
        from weakreward.models import load_model

        self.config = cfg = config if config is not None else GRPOConfig()
        if not isinstance(reward, Reward):
            raise TypeError(f"reward must be a weakreward Reward, got {type(reward).__name__}")
        self.reward = reward
        self.monitors: dict[str, Reward] = dict(monitors or {})
        self.eval_reward = eval_reward if eval_reward is not None else reward
        self.callbacks = list(callbacks)
        self.train_problems = [_as_problem(p, i) for i, p in enumerate(train_problems)]
        if not self.train_problems:
            raise ValueError("train_problems is empty")
        self.eval_problems = [_as_problem(p, i) for i, p in enumerate(eval_problems or [])]
        if cfg.eval_every and not self.eval_problems:
            raise ValueError(
                f"config.eval_every = {cfg.eval_every} but there are no eval_problems: pass eval_problems, "
                "or set eval_every=0"
            )
        self.run_dir = Path(cfg.run_dir)
        self.device = _resolve_device(cfg.device)

        self._seed_everything(cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)

        loaded_here = not isinstance(model, torch.nn.Module)
        model, tokenizer = load_model(model, tokenizer, dtype=_DTYPES[cfg.dtype])
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        if not loaded_here and cfg.dtype != "float32":
            model = model.to(_DTYPES[cfg.dtype])
        model = model.to(self.device)

        # Policy and reference. LoRA: the reference is the same weights with the adapter switched off;
        # full fine-tuning: a frozen copy, made only when the KL term is on.
        self.ref_model: torch.nn.Module | None = None
        if cfg.lora is not None:
            model = self._add_lora(model)
        elif cfg.beta > 0:
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        # Dropout off: the log-probs of the loss must be those of the sampling policy.
        self.model = model.eval()
        self.trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the model has no trainable parameters")
        on_cuda = self.device.type == "cuda"
        self._autocast = cfg.dtype == "float32" and (cfg.autocast == "always" or (on_cuda and cfg.autocast == "cuda"))
        self._onednn_linear = cfg.cpu_linear == "onednn" and self.device.type == "cpu" and not self._autocast
        self.optimizer = torch.optim.AdamW(
            [p for _, p in self.trainable],
            lr=cfg.lr,
            betas=cfg.adam_betas,
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
            # One fused kernel for all parameters (CUDA, and the CPU since torch 2.4): on the project's CPU it
            # stepped 45 tensors of a 4.7M-parameter model in 2.6 ms against 5.2 ms for the default loop.
            fused=self.device.type in ("cuda", "cpu") or None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        if engine is None:
            engine = make_engine(
                cfg.engine, self.model, tokenizer, dtype=self._rollout_dtype(), cpu_linear=cfg.cpu_linear
            )
        self.engine = engine
        # The gradient from the rollout's own forward (no training forward) where the engine can record it.
        self._record_rollouts = (
            cfg.rollout_activations == "auto"
            and isinstance(engine, StaticEngine)
            and engine.records
            and not self._autocast
        )
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self._prompt_cache: dict[str, list[int]] = {}
        self._metrics: MetricsWriter | None = None

    # -- setup ------------------------------------------------------------------------------------
    def _rollout_dtype(self) -> torch.dtype | None:
        """The static engine's compute dtype from ``config.rollout_dtype`` (None: the policy's own)."""
        name = self.config.rollout_dtype
        if name == "auto":
            name = "bfloat16" if self.device.type == "cuda" else "policy"
        return None if name == "policy" else _DTYPES[name]

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _add_lora(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, PeftModel, get_peft_model

        if isinstance(model, PeftModel):
            return model
        lora = self.config.lora
        assert lora is not None
        layers = lora.layers
        if isinstance(layers, int):
            model_config: Any = model.config  # a transformers config (nn.Module's attributes are untyped)
            n_layers = int(model_config.num_hidden_layers)
            layers = list(range(max(0, n_layers - layers), n_layers))
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,  # type: ignore[arg-type]  # peft annotates int; it scales by any number
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            layers_to_transform=layers,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, peft_config)

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        if cfg.lr_schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    # -- prompts ----------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        key = prompt_key(prompt)
        if key in self._prompt_cache:
            return self._prompt_cache[key]
        tok, mode = self.tokenizer, self.config.chat_template
        has_template = getattr(tok, "chat_template", None) is not None
        if isinstance(prompt, str) and mode != "always":
            ids = tok(prompt, add_special_tokens=True)["input_ids"]
        else:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
            if mode == "never" or not has_template:
                ids = tok("\n".join(str(m.get("content", "")) for m in messages), add_special_tokens=True)["input_ids"]
            else:
                text = chat_text(tok, messages)
                ids = tok(text, add_special_tokens=False)["input_ids"]
        if self.config.max_prompt_tokens is not None:
            ids = ids[-self.config.max_prompt_tokens :]
        self._prompt_cache[key] = list(ids)
        return self._prompt_cache[key]

    def _encode(self, prompts: Sequence[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``[B, P]`` ids and mask."""
        rows = [self._prompt_ids(p) for p in prompts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.as_tensor(row)
                mask[i, width - len(row) :] = True
        return ids.to(self.device), mask.to(self.device)

    def problems_for_step(self, step: int) -> list[Problem]:
        """The problems of step ``step`` (1-based): a fresh seeded permutation per pass over the data, so
        the order is a pure function of (seed, step) and a resumed run sees the same problems."""
        n, k = len(self.train_problems), self.config.prompts_per_step
        out = []
        for j in range((step - 1) * k, step * k):
            epoch, pos = divmod(j, n)
            order = np.random.default_rng([self.config.seed, epoch]).permutation(n)
            out.append(self.train_problems[int(order[pos])])
        return out

    # -- forward passes ---------------------------------------------------------------------------
    def _token_stats(self, model: torch.nn.Module, gen: Generation, rows: slice, temperature: float) -> TokenStats:
        """One forward over prompt + completion rows → `TokenStats` ``[b, T]`` (grad follows the mode);
        each group's prompt is computed once (`completion_token_stats`)."""
        # Under bf16 autocast (on CUDA by default; ``autocast="always"`` on the CPU too) over float32 master
        # weights: updates of lr 1e-6 would vanish in bf16 parameters.
        # Float32 products on the CPU in oneDNN, forward and backward (config.cpu_linear; off under autocast).
        with (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self._autocast),
            onednn_linear(self._onednn_linear),
        ):
            return completion_token_stats(
                model,
                gen.prompt_ids[rows],
                gen.prompt_mask[rows],
                gen.completion_ids[rows],
                gen.completion_mask[rows],
                temperature,
            )

    @torch.no_grad()
    def _reference_logprobs(self, gen: Generation, rows: slice) -> torch.Tensor:
        if self.ref_model is not None:
            return self._token_stats(self.ref_model, gen, rows, self.config.temperature).logprobs
        with self.model.disable_adapter():
            return self._token_stats(self.model, gen, rows, self.config.temperature).logprobs

    def _reuse_forward(self, n_micro_batches: int) -> bool:
        """Keep the statistics forward's graph for the loss (no second forward): with one update over one
        micro-batch the loss's forward would be the same computation."""
        return self.config.updates_per_batch == 1 and n_micro_batches == 1

    def _micro_batches(self, n: int) -> list[slice]:
        size = self.config.micro_batch_size or n
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _rollouts(
        self, problems: Sequence[Problem], gen: Generation, stats: TokenStats | None, groups: Sequence[Hashable]
    ) -> Rollouts:
        keys = sorted({k for p in problems for k in p.extras})
        return Rollouts(
            prompts=tuple(p.prompt for p in problems),
            completions=tuple(gen.completions),
            group_ids=tuple(groups),
            references=tuple(p.answer for p in problems),
            token_stats=stats,
            extras={k: tuple(p.extras.get(k) for p in problems) for k in keys},
        )

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Any]:
        """Run step ``step`` (1-based) and return its metrics."""
        cfg = self.config
        g, n = cfg.group_size, cfg.votes_per_prompt
        sampled = [p for p in self.problems_for_step(step) for _ in range(n)]
        sampled_groups = [f"{step}:{i // n}" for i in range(len(sampled))]

        minis = cfg.mini_batches(len(sampled) // n)
        stat_batches = self._micro_batches(len(sampled))
        reuse_forward = n == g and len(minis) == 1 and self._reuse_forward(len(stat_batches))

        # 1. rollout ---------------------------------------------------------------------------
        t0 = time.perf_counter()
        prompt_ids, prompt_mask = self._encode([p.prompt for p in sampled])
        gen = self.engine.generate(
            prompt_ids,
            prompt_mask,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            generator=self.generator,
            # The static engine keeps its forward for the backward (`weakreward.rollout.tape`).
            **({"record": True} if reuse_forward and self._record_rollouts else {}),
        )
        rollout_s = time.perf_counter() - t0

        # 2. token statistics: from the rollout's own logits when it was recorded, else one forward; with
        # a single update the graph is kept for the loss (memory for speed: no second forward pass).
        t1 = time.perf_counter()
        tape_logits = None
        with torch.set_grad_enabled(reuse_forward):
            if gen.tape is not None:
                tape_logits = gen.tape.logits(gen.completion_ids.shape[1]).requires_grad_()
                live_stats = [
                    token_stats_from_logits(tape_logits, gen.completion_ids, gen.completion_mask, cfg.temperature)
                ]
            else:
                live_stats = [self._token_stats(self.model, gen, rows, cfg.temperature) for rows in stat_batches]
        # sync: rewards read the statistics on the host (a copy that waits for the forward)
        stats = TokenStats(
            logprobs=torch.cat([s.logprobs.detach() for s in live_stats]).cpu(),
            entropy=torch.cat([s.entropy.detach() for s in live_stats]).cpu(),
            self_certainty=torch.cat([s.self_certainty.detach() for s in live_stats]).cpu(),
            mask=gen.completion_mask.cpu(),
        )

        # 3. reward (over all n_votes samples), and monitors the policy never trains on ------------
        rollouts = self._rollouts(sampled, gen, stats, sampled_groups)
        result = self.reward(rollouts)
        monitor_results = {name: m(rollouts) for name, m in self.monitors.items()}
        if n > g:  # vote over n, train on the first group_size of each prompt (TTRL's downsampling)
            keep = cfg.trained_rows(len(sampled) // n)
            gen, stats, live_stats = _select_generation(gen, keep), stats.select(keep), []
            problems, group_ids = [sampled[i] for i in keep], [sampled_groups[i] for i in keep]
            scores = np.asarray(result.scores)[keep]
        else:
            problems, group_ids, scores = sampled, sampled_groups, np.asarray(result.scores)
        b = len(problems)
        old_logprobs = stats.logprobs.to(self.device)

        # 4. advantages --------------------------------------------------------------------------
        adv_np = group_advantages(scores, group_ids, cfg.advantage_norm, cfg.advantage_eps, cfg.advantage_std_ddof)
        advantages = torch.as_tensor(adv_np, dtype=torch.float32, device=self.device)

        # 5. loss / backward: mini-batches (one optimizer step each), micro-batches within ----------
        mask = gen.completion_mask
        ref_logprobs = None
        if cfg.beta > 0:
            ref_logprobs = torch.cat([self._reference_logprobs(gen, rows) for rows in self._micro_batches(b)])
        # Running sums stay on the device: one host sync after the loop, not one per micro-batch.
        sums = {
            k: torch.zeros((), device=self.device)
            for k in ("loss", "policy_loss", "kl", "clip_frac", "clip_frac_lower", "ratio_mean")
        }
        grad_norm = 0.0
        # sync: one host read of the completion lengths (they scale each mini-batch's loss) and of each
        # row's last token (logged as truncated_frac), before the loop
        on_device = mask.sum(-1)
        last = gen.completion_ids.gather(1, (on_device.clamp(min=1) - 1)[:, None]).squeeze(1)
        lengths, last_tokens = torch.stack([on_device, last]).cpu()
        tokens_per_mini = [float(lengths[mini].sum()) for mini in minis]
        for _update in range(cfg.updates_per_batch):
            for mini, mini_tokens in zip(minis, tokens_per_mini, strict=True):
                batches = _shifted(self._micro_batches(mini.stop - mini.start), mini.start)
                totals = {
                    "total_tokens": mini_tokens,
                    "total_seqs": mini.stop - mini.start,
                    "max_tokens": cfg.max_new_tokens,
                    "micro_batches": len(batches),
                }
                for k, rows in enumerate(batches):
                    lp = (
                        live_stats[k].logprobs
                        if reuse_forward
                        else self._token_stats(self.model, gen, rows, cfg.temperature).logprobs
                    )
                    out = policy_loss(
                        lp,
                        old_logprobs[rows],
                        advantages[rows],
                        mask[rows],
                        clip_eps=cfg.clip_eps,
                        clip_eps_high=cfg.clip_eps_high,
                        dual_clip=cfg.dual_clip,
                        ref_logprobs=None if ref_logprobs is None else ref_logprobs[rows],
                        beta=cfg.beta,
                        kl_estimator=cfg.kl_estimator,
                        agg=cfg.loss_agg,
                        **totals,
                    )
                    out.loss.backward()
                    if tape_logits is not None:  # on from the logits through the rollout's activations
                        assert tape_logits.grad is not None, "the loss reads the tape's logits"
                        gen.tape.backward(tape_logits.grad, gen.completion_ids, gen.completion_mask)
                    share = mask[rows].sum() / max(1.0, mini_tokens)
                    sums["loss"] += out.loss.detach()
                    sums["policy_loss"] += out.policy_loss.detach()
                    sums["kl"] += out.kl.detach()
                    sums["clip_frac"] += out.clip_frac.detach() * share
                    sums["clip_frac_lower"] += out.clip_frac_lower.detach() * share
                    sums["ratio_mean"] += out.ratio_mean.detach() * share

                # 6. clip / step -----------------------------------------------------------------
                params = [p for _, p in self.trainable]
                if cfg.grad_clip is not None:
                    # sync: the norm is logged (once per optimizer step, after the backward has finished anyway)
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
                else:
                    norms = [p.grad.norm() for p in params if p.grad is not None]
                    grad_norm = float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0  # sync: logged
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.engine.sync_weights()
        del live_stats
        n_updates = cfg.updates_per_batch * len(minis)
        means = {k: float(v) / n_updates for k, v in sums.items()}  # note: the step's host sync
        train_s = time.perf_counter() - t1

        # 7. metrics (logged and checkpointed by `train`) -----------------------------------------
        lengths = lengths.float()  # read once, before the update loop
        n_tokens = float(lengths.sum())
        metrics: dict[str, Any] = {"step": step}
        metrics.update(result.log("reward/"))  # with reward/label_correct: the pseudo-label accuracy
        for name, res in monitor_results.items():
            metrics.update(res.log(f"monitor/{name}/"))
        valid = ~np.isnan(scores)
        per_group = [scores[i : i + g][valid[i : i + g]] for i in range(0, b, g)]
        metrics.update(
            {
                "advantage/mean": float(adv_np.mean()),
                "advantage/std": float(adv_np.std()),
                "advantage/abs_mean": float(np.abs(adv_np).mean()),
                "frac_zero_std_groups": float(np.mean([len(s) < 2 or float(np.ptp(s)) == 0.0 for s in per_group])),
                **means,
                "grad_norm": grad_norm,
                "lr": lr,
                "entropy": _masked_mean(stats.entropy, stats.mask),
                "self_certainty": _masked_mean(stats.self_certainty, stats.mask),
                "completion_len/mean": float(lengths.mean()),
                "completion_len/max": float(lengths.max()),
                "truncated_frac": float((~self._ends_with_eos(last_tokens)).float().mean()),
                "rollout_s": rollout_s,
                "train_s": train_s,
                "tokens_per_s": n_tokens / max(rollout_s, 1e-9),
                "peak_mem_mb": _peak_memory_mb(self.device),
            }
        )
        return metrics

    def _ends_with_eos(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """``[B]`` True where a completion's last token is an EOS (it ended, not cut at max_new_tokens)."""
        eos = getattr(self.engine, "eos_ids", None) or [self.tokenizer.eos_token_id]
        return torch.isin(last_tokens, torch.as_tensor(list(eos)))

    # -- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """avg@n and pass@k of `eval_reward` on the evaluation problems (``n = eval_samples``)."""
        cfg = self.config
        if not self.eval_problems:
            return {}
        n = cfg.eval_samples
        temperature = cfg.eval_temperature or cfg.temperature
        per_chunk = max(1, cfg.batch_size // n)
        needs_stats = any(need.startswith("token_stats") for need in self.eval_reward.needs)
        scores: list[list[float]] = []
        for start in range(0, len(self.eval_problems), per_chunk):
            chunk = self.eval_problems[start : start + per_chunk]
            problems = [p for p in chunk for _ in range(n)]
            ids, mask = self._encode([p.prompt for p in problems])
            gen = self.engine.generate(
                ids,
                mask,
                max_new_tokens=cfg.max_new_tokens,
                temperature=temperature,
                top_p=cfg.top_p,
                generator=self.generator,
            )
            stats = None
            if needs_stats:
                stats = self._token_stats(self.model, gen, slice(0, len(problems)), temperature)
            groups = [f"eval:{start + i // n}" for i in range(len(problems))]
            result: RewardResult = self.eval_reward(self._rollouts(problems, gen, stats, groups))
            scores += [result.scores[i : i + n].tolist() for i in range(0, len(problems), n)]
        return {f"eval/{k}": v for k, v in eval_metrics(scores).items()}

    # -- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _reward_states(self) -> dict[str, Any]:
        states = {"reward": self.reward.state_dict(), "monitors": {k: m.state_dict() for k, m in self.monitors.items()}}
        if self.eval_reward is not self.reward:
            states["eval_reward"] = self.eval_reward.state_dict()
        return states

    def save_checkpoint(self) -> Path:
        """Checkpoint the current step atomically (see `weakreward.grpo.checkpoint`)."""
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(self.generator),
            "rewards": self._reward_states(),
            "config": self.config.model_dump(mode="json"),
        }
        path = save_checkpoint(self.checkpoint_dir, self.step, {n: p for n, p in self.trainable}, state)
        prune_checkpoints(self.checkpoint_dir, self.config.keep_checkpoints)
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore weights, optimizer, schedule, step, RNG and reward states from a checkpoint folder."""
        weights, state = load_checkpoint(path)
        params = dict(self.trainable)
        missing = sorted(set(params) - set(weights))
        if missing:
            raise ValueError(
                f"checkpoint {path} lacks {len(missing)} trainable tensors, e.g. {missing[:3]}: was it saved with another lora setting?"
            )
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(weights[name].to(p.device, p.dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], self.generator)
        rewards = state.get("rewards", {})
        self.reward.load_state_dict(rewards.get("reward", {}))
        for name, m in self.monitors.items():
            m.load_state_dict(rewards.get("monitors", {}).get(name, {}))
        if "eval_reward" in rewards:
            self.eval_reward.load_state_dict(rewards["eval_reward"])
        self.step = int(state["step"])
        self.engine.sync_weights()

    def _maybe_resume(self) -> int | None:
        resume = self.config.resume
        if resume is None:
            return None
        path = latest_checkpoint(self.checkpoint_dir) if resume == "latest" else Path(resume)
        if path is None:
            return None
        if not (Path(path) / "state.pt").exists():
            raise FileNotFoundError(f"resume={resume!r}: {path} is not a checkpoint folder (no state.pt)")
        self.load_checkpoint(path)
        return self.step

    def save_final(self) -> Path:
        """Write the trained weights in Hugging Face format to ``run_dir/final`` (the adapter for LoRA)."""
        final = self.run_dir / "final"
        self.model.save_pretrained(str(final))
        if self.config.lora is None:
            self.tokenizer.save_pretrained(str(final))
        return final

    # -- the loop ---------------------------------------------------------------------------------
    def train(self) -> list[dict[str, Any]]:
        """Train until ``config.steps``; returns the metrics of the steps run by this call.

        With ``resume="latest"`` the run continues from the newest checkpoint in ``run_dir``, and
        ``metrics.jsonl`` is cut back to that step first, so it never holds a step twice.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed_at = self._maybe_resume()
        metrics_file = self.run_dir / "metrics.jsonl"
        earlier_run = (self.checkpoint_dir.exists() and any(self.checkpoint_dir.iterdir())) or (
            metrics_file.exists() and metrics_file.stat().st_size > 0
        )
        if cfg.resume is None and earlier_run and not cfg.overwrite:
            raise FileExistsError(
                f"run_dir {self.run_dir} holds an earlier run (metrics.jsonl, checkpoints/): set resume='latest' "
                "to continue it, overwrite=True to replace it, or choose another run_dir"
            )
        if resumed_at is None and self.checkpoint_dir.exists():
            # A fresh run replaces the folder's previous run: stale checkpoints must not be resumed later.
            shutil.rmtree(self.checkpoint_dir)
        self._metrics = MetricsWriter(
            self.run_dir / "metrics.jsonl", resume_step=resumed_at if resumed_at is not None else None
        )
        if resumed_at is not None:
            self.history = [r for r in read_metrics(self._metrics.path) if r["step"] > 0]
        (self.run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
        for cb in self.callbacks:
            cb.on_train_begin(self)
        if resumed_at is None and cfg.eval_every and self.eval_problems:
            # M(0): the held-out metric before any update, the baseline of the saturation analysis
            # (Δ_sat = M(t_sat) − M(0)). Written as a step-0 line; `history` holds training steps only.
            eval_out = self.evaluate()
            self._metrics.write({"step": 0, **eval_out})
            for cb in self.callbacks:
                cb.on_evaluate(self, 0, eval_out)
        ran: list[dict[str, Any]] = []
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            file=sys.stderr,
            disable=not cfg.progress,
            desc="grpo",
            dynamic_ncols=True,
        )
        try:
            while self.step < cfg.steps:
                step = self.step + 1
                metrics = self.train_step(step)
                self.step = step
                last = step == cfg.steps
                if cfg.eval_every and (step % cfg.eval_every == 0 or last):
                    eval_out = self.evaluate()
                    metrics.update(eval_out)
                    for cb in self.callbacks:
                        cb.on_evaluate(self, step, eval_out)
                self._metrics.write(metrics)  # before the checkpoint: a resume cuts later lines back
                if (cfg.save_every and step % cfg.save_every == 0) or last:
                    self.save_checkpoint()
                self.history.append(metrics)
                ran.append(metrics)
                for cb in self.callbacks:
                    cb.on_step_end(self, step, metrics)
                bar.set_postfix(self._postfix(metrics), refresh=False)
                bar.update(1)
        finally:
            bar.close()
        if self.step >= cfg.steps and ran:
            self.save_final()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return ran

    def _postfix(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        out = {"reward": f"{metrics.get('reward/mean', math.nan):.3f}"}
        for name in self.monitors:
            out[name] = f"{metrics.get(f'monitor/{name}/mean', math.nan):.3f}"
        out["loss"] = f"{metrics['loss']:.4f}"
        out["kl"] = f"{metrics['kl']:.2e}"
        out["len"] = f"{metrics['completion_len/mean']:.0f}"
        return out
