"""The ``weakreward`` command: ``demo``, ``train CONFIG.yaml``, ``report RUN_DIR`` and ``reproduce FINDING``.

Each subcommand is registered by a small ``_add_<name>(subparsers)`` function that sets ``func`` (the
handler, returning an exit code); add a command by adding one such function to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from weakreward.grpo.demo import run_demo

    summary = run_demo(args.run_dir, steps=args.steps, seed=args.seed, resume=args.resume)
    learned = summary["reward_last"] > summary["reward_first"] and summary["true_last"] > summary["true_first"]
    return 0 if learned or not args.check else 1


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train SmolLM2-135M on arithmetic under a noisy reward (CPU, under 2 min)")
    p.add_argument("--run-dir", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's 24)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --run-dir")
    p.add_argument("--check", action="store_true", help="exit 1 unless reward and true accuracy both rose")
    p.set_defaults(func=_demo)


def _train(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from weakreward.grpo.recipe import TrainRecipe

    path = Path(args.config)
    try:
        recipe = TrainRecipe.from_yaml(path)
        updates = {}
        if args.run_dir is not None:
            updates["run_dir"] = args.run_dir
        if args.steps is not None:
            updates["steps"] = args.steps
        if args.resume:
            updates["resume"] = "latest"
        if updates:
            recipe.grpo = recipe.grpo.model_validate({**recipe.grpo.model_dump(), **updates})
        trainer = recipe.build_trainer(base_dir=path.parent)
    except ValidationError as err:
        for e in err.errors():
            field = ".".join(str(x) for x in e["loc"]) or "(top level)"
            print(f"weakreward train: {path}: {field}: {e['msg']}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as err:
        print(f"weakreward train: {path}: {err}", file=sys.stderr)
        return 2
    trainer.train()
    last = trainer.history[-1] if trainer.history else {}
    print(
        f"done: {trainer.step} steps, last reward/mean {last.get('reward/mean')}, metrics in {trainer.run_dir / 'metrics.jsonl'}"
    )
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="run GRPO from a YAML recipe (see weakreward.grpo.recipe)")
    p.add_argument("config", help="the YAML recipe")
    p.add_argument("--run-dir", default=None, help="override grpo.run_dir")
    p.add_argument("--steps", type=int, default=None, help="override grpo.steps")
    p.add_argument("--resume", action="store_true", help='set grpo.resume = "latest"')
    p.set_defaults(func=_train)


def _add_report(sub: argparse._SubParsersAction) -> None:
    try:
        from weakreward.dynamics.report import add_report_arguments, run_report_command
    except ImportError:
        return
    p = sub.add_parser("report", help="training-reward saturation of a run (t_sat, Δ_sat, Δ*_post)")
    add_report_arguments(p)
    p.set_defaults(func=run_report_command)


def _data_to_verl(args: argparse.Namespace) -> int:
    from weakreward.data.parquet import write_verl_parquet

    try:
        n = write_verl_parquet(args.source, args.target)
    except (OSError, ValueError) as err:
        print(f"weakreward data to-verl: {err}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {args.target}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="convert data files")
    data = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    to_verl = data.add_parser(
        "to-verl",
        help="rewrite one of the paper's parquet files for verl 0.9's loader (struct extra_info, plain labels)",
    )
    to_verl.add_argument("source", help="the paper's parquet file")
    to_verl.add_argument("target", help="the parquet file to write")
    to_verl.set_defaults(func=_data_to_verl)


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    from weakreward.reproduce.command import add_reproduce_parser

    add_reproduce_parser(sub)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_demo,
    _add_train,
    _add_report,
    _add_data,
    _add_reproduce,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``weakreward`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="weakreward", description="Weak-reward primitives for RLVR.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``weakreward`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
