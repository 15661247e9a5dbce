"""Time the parts of a `weakreward reproduce` run on the embedded model, to size the commands.

One short real run (``--steps``, default 3) with the full sizes (`weakreward.reproduce.runner.FULL`):
model load, the probes of the starting model, the held-out evaluation at step 0, the training steps, and
the probes of the trained model. Writes ``bench/results/reproduce_timing.json`` with each time, the load
average, and the command estimates of `weakreward.reproduce.runner.Timing`.

There is no peer to compare with here: the numbers feed the budget arithmetic of the package docstring.

Run: ``nohup nice -n 10 python bench/reproduce_timing.py > bench/reproduce_timing.log 2>&1 &``
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from weakreward import Callback, GRPOTrainer, MathVerifier
from weakreward.models import load_model
from weakreward.reproduce import noise, proxy, scarce
from weakreward.reproduce.probing import probe
from weakreward.reproduce.runner import FULL, Timing, TrueAccuracy, arithmetic_split, training_set


class Clock(Callback):
    """Wall and CPU time of the step-0 evaluation and of each step."""

    def __init__(self) -> None:
        self.mark = (time.perf_counter(), time.process_time())
        self.eval0_s = (0.0, 0.0)
        self.eval0: dict[str, Any] = {}
        self.steps: list[tuple[float, float]] = []

    def _lap(self) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        lap = (now[0] - self.mark[0], now[1] - self.mark[1])
        self.mark = now
        return lap

    def on_train_begin(self, trainer: Any) -> None:
        self._lap()

    def on_evaluate(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        if step == 0:
            self.eval0_s = self._lap()
            self.eval0 = dict(metrics)
            print(f"eval at step 0: wall/cpu {self.eval0_s} s, {metrics}", flush=True)

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        self.steps.append(self._lap())
        print(f"step {step}: wall/cpu {self.steps[-1]} s", flush=True)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, tuple[float, float]]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0, time.process_time() - c0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="bench/results/reproduce_timing.json")
    args = parser.parse_args()
    sizes = dataclasses.replace(FULL, steps=args.steps, eval_every=args.steps)
    load0 = os.getloadavg()
    (model, tokenizer), load = _timed(load_model, "smollm2-gguf")
    print(f"load wall/cpu {load} s; torch threads {torch.get_num_threads()}", flush=True)
    pool, held_out = arithmetic_split(sizes.max_operand, sizes.eval_problems)
    verifier = MathVerifier(workers=1)
    base, probes = _timed(probe, model, tokenizer, held_out, verifier, sizes, seed=0)
    print(f"probes wall/cpu {probes} s: {base}", flush=True)
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GRPOTrainer(
            copy.deepcopy(model),
            verifier,
            training_set(pool, 64, 0, sizes.prompts_per_step),
            tokenizer=tokenizer,
            config=sizes.grpo_config(Path(tmp), 0),
            eval_problems=held_out,
            eval_reward=verifier,
            monitors={"true": TrueAccuracy(verifier)},
            callbacks=[clock],
        )
        history = trainer.train()
    verifier.close()
    # The last step includes the final evaluation; the earlier ones are pure steps.
    pure = clock.steps[:-1] or clock.steps

    def timing(k: int) -> Timing:  # k = 0: wall time under the load of the moment; 1: CPU seconds
        eval_s = clock.eval0_s[k]
        return Timing(
            step_s=round(sum(s[k] for s in pure) / len(pure), 1),
            eval_s=round(eval_s, 1),
            probe_s=round(probes[k], 1),
            load_s=round(load[k], 1),
            # mining samples 64 problems x mining_samples, the evaluation eval_problems x eval_samples
            mining_s=round(eval_s * 64 * sizes.mining_samples / (sizes.eval_problems * sizes.eval_samples), 1),
        )

    # The clean baseline (N = 64, seed 0, true verifier) is trained once, by scarce, and copied by the others.
    runs = {
        "scarce": len(scarce.NS) * len(scarce.SEEDS),
        "noise": len(noise.GAMMAS) - 1,
        "proxy": len(proxy.REWARDS) - 1,
    }
    out: dict[str, Any] = {}
    for k, kind in enumerate(("wall", "cpu")):
        t = timing(k)
        estimates = {name: round(t.command_s(FULL, n, mining=name == "noise")) for name, n in runs.items()}
        out[kind] = {"timing": dataclasses.asdict(t), "estimates_s": estimates, "total_s": sum(estimates.values())}
    out.update(
        {
            "steps_wall_cpu_s": [[round(w, 1), round(c, 1)] for w, c in clock.steps],
            "rollout_s": [round(h["rollout_s"], 1) for h in history],
            "train_s": [round(h["train_s"], 1) for h in history],
            "probe_accuracy_base": base.get("accuracy"),
            "eval_step0": clock.eval0,
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
            "torch_threads": torch.get_num_threads(),
            "sizes": dataclasses.asdict(sizes),
        }
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2), flush=True)


if __name__ == "__main__":
    main()
