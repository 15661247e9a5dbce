"""``weakreward reproduce {scarce,noise,proxy,report}``: run one finding end to end, or stitch the reports.

Each finding runs into ``--run-dir`` (default ``runs/reproduce/<finding>``; ``runs/reproduce-smoke/...``
with ``--smoke``) and finishes with ``report.md``, its PNG figures and ``section.json`` there. Rerunning the
same command skips finished runs and resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TextIO

from weakreward.reproduce.report import FINDINGS, Section, combined_report, write_section


def reproduce(
    finding: str, run_dir: str | Path | None = None, *, smoke: bool = False, stream: TextIO | None = None
) -> Section:
    """Run (or resume) one finding and write its report; returns the report's `Section`.

    Args:
        finding: ``"scarce"``, ``"noise"`` or ``"proxy"``.
        run_dir: The command's folder (default ``runs/reproduce/<finding>``, or ``runs/reproduce-smoke/...``).
        smoke: A tiny random model and tiny sizes (seconds; checks the pipeline, learns nothing).
        stream: Where progress goes (default stderr).
    """
    from weakreward.reproduce.runner import FULL, SMOKE, Experiment, budget

    if finding not in FINDINGS:
        raise ValueError(f"finding must be one of {', '.join(FINDINGS)}, got {finding!r}")
    module = importlib.import_module(f"weakreward.reproduce.{finding}")
    default = Path("runs/reproduce-smoke" if smoke else "runs/reproduce") / finding
    exp = Experiment(finding, run_dir or default, SMOKE if smoke else FULL, smoke=smoke, stream=stream)
    try:
        specs = module.plan(exp)
        exp.begin(specs)
        exp.base_probes()
        results = [exp.run(spec, i + 1) for i, spec in enumerate(specs)]
        section = module.analyse(exp, results, specs)
        trained = sum(1 for r in results if not r.get("copied_from"))
        if not smoke:  # the estimate is of the embedded model on two idle cores
            section.settings["budget (estimate)"] = budget(exp.sizes, trained, mining=finding == "noise")
        section.settings["wall time (measured)"] = f"{exp.wall_s() / 60:.1f} min of recorded work"
        path = write_section(exp.root, section)
    finally:
        exp.close()
    exp.log(f"verdict: {section.verdict} ({section.reason})")
    exp.log(f"report: {path}")
    return section


def _run(args: argparse.Namespace) -> int:
    if args.finding == "report":
        try:
            out = combined_report(args.root, args.out)
        except FileNotFoundError as err:
            print(f"weakreward reproduce report: {err}", file=sys.stderr)
            return 2
        print(f"wrote {out}")
        return 0
    try:
        reproduce(args.finding, args.run_dir, smoke=args.smoke)
    except RuntimeError as err:  # a folder made with other settings: say so, no traceback
        print(f"weakreward reproduce {args.finding}: {err}", file=sys.stderr)
        return 2
    return 0


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``weakreward reproduce`` on the ``weakreward`` parser's subcommands."""
    p = sub.add_parser(
        "reproduce",
        help="the paper's findings at small scale on the embedded model (scarce, noise, proxy; report)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("finding", choices=(*FINDINGS, "report"), help="the finding to run, or report to stitch them")
    p.add_argument("--run-dir", default=None, help="the finding's folder (default: runs/reproduce/FINDING)")
    p.add_argument("--smoke", action="store_true", help="a tiny random model and tiny sizes (seconds)")
    p.add_argument("--root", default="runs/reproduce", help="report: the folder holding the findings' folders")
    p.add_argument("--out", default="runs/reproduce/reproduction.md", help="report: the markdown file to write")
    p.set_defaults(func=_run)
