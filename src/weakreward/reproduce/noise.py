"""Finding 2, noisy labels: ``weakreward reproduce noise``.

The paper's method: sample the starting model several times on each training problem, take each
problem's most frequent wrong answer (`weakreward.mine_wrong_answers`), and make it the label of a
fraction γ of the problems (`weakreward.corrupt_labels`; the same seeded order for every γ, so the
corrupted sets are nested). Train on each γ with the verifier against the (partly wrong) labels; the
held-out set keeps its true labels, and the ``true`` monitor scores the training batches against the
original labels.

The paper ties tolerance to the regime: a model in the generalising regime keeps its gain up to a large γ
(about 0.7 for Qwen2.5-Math), a memorising one does not. The check, from this run alone:

- *regime* of the clean run (γ = 0): generalising if it never saturates rapidly (no ``t_sat`` or
  ``t_sat ≥`` the rapid cut-off), memorising otherwise;
- *tolerance* γ*: the largest γ such that every γ' ≤ γ keeps a held-out gain above the margin and not
  below the clean gain by more than the margin;
- pass if (generalising and γ* ≥ 0.5) or (memorising and γ* ≤ 0.3); fail otherwise.

Precondition: the clean run's held-out gain exceeds the margin (else there is nothing to tolerate).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from weakreward import corrupt_labels, mine_wrong_answers
from weakreward.data import Problem, corrupted_fraction
from weakreward.dynamics import SaturationReport
from weakreward.reproduce.report import (
    COLORS,
    Check,
    Heldout,
    Line,
    Section,
    figure,
    heldout,
    margin,
    read_rows,
    series,
    smooth,
    table,
    window_mean,
)
from weakreward.reproduce.runner import Experiment, RunSpec, finding_section, sample, settings, training_set

TITLE = "Noisy labels: tolerance depends on the regime"
CLAIM = (
    "a model in the generalising regime tolerates a large fraction of wrong labels (about γ = 0.7 for "
    "Qwen2.5-Math-1.5B) where others do not"
)
GAMMAS = (0.0, 0.3, 0.5, 0.7)
N_TRAIN = 64
SMOKE_N_TRAIN = 4


@dataclass
class _Run:
    """One γ's run as `analyse` reads it back."""

    spec: RunSpec
    rows: dict[int, dict[str, Any]]
    held: Heldout
    sat: SaturationReport


def _fallback(problem: Problem) -> str:
    # Only where the model gave no wrong answer at all: the nearest wrong integer (counted in the report).
    try:
        return str(int(str(problem.answer)) + 1)
    except ValueError:
        return str(problem.answer) + "0"


def wrong_labels(exp: Experiment, problems: list[Problem]) -> dict[str, Any]:
    """Mine each training problem's most frequent wrong answer from the starting model (cached).

    Args:
        exp: The finding's experiment: its starting model, verifier and sizes (``mining_samples`` samples
            per problem); the result is cached in ``exp.root / "wrong_answers.json"`` and read back from there.
        problems: The distinct training problems.

    Returns:
        ``{"wrong": {problem key: wrong answer or None}, "samples": samples per problem, "wall_s": seconds}``.
    """
    path = exp.root / "wrong_answers.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.monotonic()
    exp.log(f"mining wrong labels: {exp.sizes.mining_samples} samples x {len(problems)} problems")
    model, tokenizer = exp.base()
    samples = sample(
        model,
        tokenizer,
        [p.prompt for p in problems],
        exp.sizes.mining_samples,
        max_new_tokens=exp.sizes.max_new_tokens,
        seed=0,
    )
    mined = mine_wrong_answers(samples, exp.verifier, references=problems)
    out = {
        "wrong": {problems[i].key: answer for i, answer in mined.items()},
        "samples": exp.sizes.mining_samples,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    path.write_text(json.dumps(out, indent=2))
    return out


def noisy_set(problems: list[Problem], gamma: float, wrong: dict[str, str | None]) -> tuple[list[Problem], int]:
    """``problems`` with ``round(γ·n)`` labels replaced by mined wrong answers; returns the set and how
    many replacement labels came from `_fallback` because too few problems had a mined one.

    Args:
        problems: The training problems.
        gamma: Fraction γ of the problems to corrupt, in ``[0, 1]`` (`weakreward.corrupt_labels`, seed 0).
        wrong: The mined wrong answer per problem key (`wrong_labels`); None where none was mined.
    """
    try:
        return corrupt_labels(problems, gamma, wrong_answer=wrong, seed=0), 0
    except ValueError:
        noisy = corrupt_labels(problems, gamma, wrong_answer=lambda p: wrong.get(p.key) or _fallback(p), seed=0)
        return noisy, sum(p.meta["corrupted"] and not wrong.get(p.key) for p in noisy)


def plan(exp: Experiment) -> list[RunSpec]:
    """One run per γ on the same training problems."""
    n = SMOKE_N_TRAIN if exp.smoke else N_TRAIN
    problems = training_set(exp.pool, n, 0, exp.sizes.prompts_per_step)
    wrong = wrong_labels(exp, list({p.key: p for p in problems}.values()))["wrong"]
    specs = []
    for gamma in GAMMAS:
        noisy, fallback = noisy_set(problems, gamma, wrong)
        specs.append(
            RunSpec(
                name=f"gamma{gamma:.1f}",
                reward=exp.verifier,
                train=noisy,
                seed=0,
                labels={"gamma": gamma, "realised": corrupted_fraction(noisy), "fallback": fallback},
            )
        )
    return specs


def analyse(exp: Experiment, results: list[dict[str, Any]], specs: list[RunSpec]) -> Section:
    """The noisy-labels report: a table per γ, the regime and the tolerated γ*, figures, probes.

    Reads each run's ``metrics.jsonl`` back from ``exp.root``, applies the module's checks by the verdict rule
    (`weakreward.reproduce.report.verdict`) and writes ``curves.png`` and ``final.png`` into ``exp.root``.

    Args: as `scarce.analyse`.
    """
    s = exp.sizes
    m = len(exp.held_out) * s.eval_samples
    runs: dict[float, _Run] = {}
    for spec in specs:
        rows = read_rows(exp.root / spec.name)
        runs[spec.labels["gamma"]] = _Run(
            spec=spec,
            rows=rows,
            held=heldout(rows, s.heldout_key, m),
            sat=exp.saturation_report(exp.root / spec.name),
        )
    gammas = sorted(runs)
    clean = runs[gammas[0]]
    table_rows = []
    for g in gammas:
        r = runs[g]
        _, rewards = series(r.rows, "reward/mean")
        _, true = series(r.rows, "monitor/true/mean")
        table_rows.append(
            (
                f"{g:.1f}",
                f"{r.spec.labels['realised']:.2f}",
                r.spec.labels["fallback"],
                window_mean(rewards, 5, last=True),
                window_mean(true, 5, last=True),
                "not reached" if r.sat.t_sat is None else r.sat.t_sat,
                r.held.start,
                r.held.end,
                r.held.gain,
            )
        )

    clean_noise = margin(clean.held.end, clean.held.m_end, clean.held.start, clean.held.m_start)
    pre = [
        Check(
            "the clean run (γ = 0) gained held-out accuracy",
            "pass" if clean.held.gain > clean_noise else "fail",
            f"gain {clean.held.gain:+.3f}, margin {clean_noise:.3f}",
        )
    ]
    t_sat = clean.sat.t_sat
    generalising = t_sat is None or t_sat >= s.rapid_before
    tolerated = []
    for g in gammas:
        h = runs[g].held
        own = margin(h.end, h.m_end, h.start, h.m_start)
        vs_clean = margin(h.end, h.m_end, clean.held.end, clean.held.m_end)
        ok = h.gain > own and h.end >= clean.held.end - vs_clean
        if not ok:
            break
        tolerated.append(g)
    gamma_star = tolerated[-1] if tolerated else math.nan
    consistent = (generalising and gamma_star >= 0.5) or (not generalising and not gamma_star > 0.3)
    checks = [
        Check(
            "the tolerated noise matches the regime",
            "pass" if consistent else "fail",
            f"clean run {'generalising' if generalising else 'memorising'} (t_sat "
            f"{'not reached' if t_sat is None else t_sat}, rapid if < {s.rapid_before}); tolerated up to "
            f"γ* = {'none' if not tolerated else gamma_star}; the paper predicts "
            f"{'γ* ≥ 0.5' if generalising else 'γ* ≤ 0.3'}",
        )
    ]

    lines = []
    for i, g in enumerate(gammas):
        x, y = series(runs[g].rows, s.heldout_key, train_only=False)
        lines.append(Line(f"γ = {g:.1f}", x, y, COLORS[i], "-", "o"))
    true_lines = []
    for i, g in enumerate(gammas):
        x, y = series(runs[g].rows, "monitor/true/mean")
        true_lines.append(Line(f"γ = {g:.1f}", x, smooth(y, s.smooth), COLORS[i]))
    figure(
        exp.root / "curves.png",
        [
            ("held-out accuracy over training", s.heldout_key, lines),
            (f"true accuracy on the training batch ({s.smooth}-step mean)", "monitor/true/mean", true_lines),
        ],
        title="noisy labels: accuracy per γ",
    )
    end = [runs[g].held.end for g in gammas]
    bars = [margin(e, runs[g].held.m_end, e, runs[g].held.m_end) / 2 for g, e in zip(gammas, end)]
    _end_figure(exp.root / "final.png", gammas, end, bars, clean.held.start)

    mined = json.loads((exp.root / "wrong_answers.json").read_text())
    n_train = len({p.key for p in specs[0].train})
    n_mined = sum(v is not None for v in mined["wrong"].values())
    return finding_section(
        exp,
        blocks=[
            f"Wrong labels mined from {mined['samples']} samples per problem of the starting model: "
            f"{n_mined} of {len(mined['wrong'])} training problems had a wrong answer to mine.",
            "### Per γ\n\n"
            + table(
                [
                    "γ",
                    "realised γ",
                    "fallback labels",
                    "training reward last 5",
                    "true accuracy last 5",
                    "t_sat",
                    "held-out start",
                    "held-out end",
                    "held-out gain",
                ],
                table_rows,
            ),
            "![held-out and true accuracy per γ]({fig:curves.png})",
            "![final held-out accuracy against γ]({fig:final.png})",
        ],
        pre=pre,
        checks=checks,
        results=results,
        probe_label=lambda r: (f"γ = {r['labels']['gamma']:.1f}",),
        label_columns=["model"],
        finding="noise",
        title=TITLE,
        claim=CLAIM,
        figures=["curves.png", "final.png"],
        settings={**settings(exp, [0]), "γ": ", ".join(f"{g:.1f}" for g in gammas), "training problems": n_train},
    )


def _end_figure(path: Any, gammas: list[float], end: list[float], err: list[float], start: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.errorbar(gammas, end, yerr=err, marker="o", capsize=3, label="held-out accuracy at the end (±1 s.e.)")
    ax.axhline(start, color="0.5", ls=":", label="starting model")
    ax.set_xlabel("γ (fraction of wrong labels)")
    ax.set_ylabel("held-out accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
