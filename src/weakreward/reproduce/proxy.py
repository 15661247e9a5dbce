"""Finding 3, proxy rewards: ``weakreward reproduce proxy``.

Four runs on the same training problems, differing only in the reward: the true verifier,
`weakreward.MajorityVote` (TTRL; labels unused), `weakreward.SelfCertainty` (Intuitor; labels unused) and
`weakreward.RandomReward` (the control). Every run logs the true verifier and a majority vote as
monitors (`weakreward.reproduce.runner.Experiment.monitors`), so the curves show the true accuracy of the training batches and how often the group's
majority answer is right (the pseudo-label accuracy), next to token entropy and completion length.

Preconditions: the true verifier's held-out gain exceeds the margin, and exceeds the random control's by
more than the margin (else the setting cannot tell a signal from none).

Checks:

- *majority vote helps only where the majority is often right*: with ``a`` the pseudo-label accuracy of
  the majority-vote run's first steps, the paper predicts a held-out gain when ``a ≥ 0.5`` and none when
  ``a < 0.5``; pass when the gain agrees (beyond the margin when a gain is predicted), fail otherwise;
- *self-certainty collapses*: pass when its token entropy falls by at least 10 % (first to last steps)
  and its held-out accuracy ends below the start by more than the margin; fail when its held-out gain
  exceeds the margin; unclear otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from weakreward import MajorityVote, RandomReward, Reward, SelfCertainty
from weakreward.reproduce.report import (
    COLORS,
    Check,
    Heldout,
    Line,
    Section,
    compare,
    figure,
    heldout,
    margin,
    read_rows,
    series,
    smooth,
    table,
    window_mean,
)
from weakreward.reproduce.runner import Experiment, RunSpec, finding_section, settings, training_set

TITLE = "Proxy rewards: majority vote and self-certainty"
CLAIM = (
    "majority vote helps only where the group's majority is often right; self-certainty collapses "
    "(entropy and length fall while true accuracy falls)"
)
N_TRAIN = 64
SMOKE_N_TRAIN = 4
REWARDS = ("true", "majority", "self_certainty", "random")
KEYS = {
    "reward/mean": "training reward",
    "monitor/true/mean": "true accuracy (training batch)",
    "monitor/majority/label_correct": "majority pseudo-label accuracy",
    "entropy": "token entropy (nats)",
    "completion_len/mean": "completion length (tokens)",
}


@dataclass
class _Run:
    """One reward's run as `analyse` reads it back."""

    rows: dict[int, dict[str, Any]]
    held: Heldout


def rewards(exp: Experiment) -> dict[str, Reward]:
    """The four training rewards."""
    return {
        "true": exp.verifier,
        "majority": MajorityVote(exp.verifier),
        "self_certainty": SelfCertainty(),
        "random": RandomReward(p=0.5, seed=0),
    }


def plan(exp: Experiment) -> list[RunSpec]:
    n = SMOKE_N_TRAIN if exp.smoke else N_TRAIN
    problems = training_set(exp.pool, n, 0, exp.sizes.prompts_per_step)
    return [
        RunSpec(name=name, reward=reward, train=problems, seed=0, labels={"reward": name})
        for name, reward in rewards(exp).items()
    ]


def analyse(exp: Experiment, results: list[dict[str, Any]], specs: list[RunSpec]) -> Section:
    """The proxy-rewards report: a table per reward, the majority-vote and self-certainty checks, figures, probes.

    Reads each run's ``metrics.jsonl`` back from ``exp.root``, applies the module's checks by the verdict rule
    (`weakreward.reproduce.report.verdict`) and writes ``curves.png`` into ``exp.root``.

    Args: as `scarce.analyse`.
    """
    s = exp.sizes
    m = len(exp.held_out) * s.eval_samples
    w = max(1, s.steps // 8)
    runs: dict[str, _Run] = {}
    for spec in specs:
        rows = read_rows(exp.root / spec.name)
        runs[spec.name] = _Run(rows=rows, held=heldout(rows, s.heldout_key, m))

    def first_last(name: str, key: str) -> tuple[float, float]:
        _, y = series(runs[name].rows, key)
        return window_mean(y, w, last=False), window_mean(y, w, last=True)

    table_rows = []
    for name in runs:
        cells: list[Any] = [name]
        for key in KEYS:
            a, b = first_last(name, key)
            cells.append(f"{a:.3f} → {b:.3f}" if math.isfinite(a) and math.isfinite(b) else "n/a")
        h = runs[name].held
        cells += [h.start, h.end, h.gain]
        table_rows.append(cells)

    def noise(name: str, other: str | None = None) -> float:
        h = runs[name].held
        if other is None:
            return margin(h.end, h.m_end, h.start, h.m_start)
        o = runs[other].held
        return margin(h.end, h.m_end, o.end, o.m_end)

    true, rand = runs["true"].held, runs["random"].held
    pre = [
        Check(
            "the true verifier gained held-out accuracy",
            "pass" if true.gain > noise("true") else "fail",
            f"gain {true.gain:+.3f}, margin {noise('true'):.3f}",
        ),
        Check(
            "the true verifier beat the random control",
            "pass" if true.gain - rand.gain > noise("true", "random") else "fail",
            f"gain {true.gain:+.3f} vs {rand.gain:+.3f}, margin {noise('true', 'random'):.3f}",
        ),
    ]
    label_acc, _ = first_last("majority", "monitor/majority/label_correct")
    mv = runs["majority"].held
    mv_noise = noise("majority")
    if math.isfinite(label_acc) and label_acc >= 0.5:
        mv_outcome, predicted = compare(mv.gain, mv_noise), "a gain"
    else:
        mv_outcome, predicted = ("fail" if mv.gain > mv_noise else "pass"), "no gain"
    sc = runs["self_certainty"].held
    ent0, ent1 = first_last("self_certainty", "entropy")
    entropy_fell = math.isfinite(ent0) and math.isfinite(ent1) and ent1 <= 0.9 * ent0
    sc_noise = noise("self_certainty")
    if sc.gain > sc_noise:
        sc_outcome = "fail"
    elif entropy_fell and sc.gain < -sc_noise:
        sc_outcome = "pass"
    else:
        sc_outcome = "unclear"
    len0, len1 = first_last("self_certainty", "completion_len/mean")
    checks = [
        Check(
            "majority vote helps only where the majority is right",
            mv_outcome,
            f"pseudo-label accuracy {label_acc:.3f} in the first {w} steps predicts {predicted}; held-out gain "
            f"{mv.gain:+.3f}, margin {mv_noise:.3f}",
        ),
        Check(
            "self-certainty collapses",
            sc_outcome,
            f"entropy {ent0:.3f} → {ent1:.3f}, length {len0:.1f} → {len1:.1f}, held-out gain {sc.gain:+.3f}, "
            f"margin {sc_noise:.3f}",
        ),
    ]

    panels = []
    for key, title in KEYS.items():
        lines = []
        for i, name in enumerate(runs):
            x, y = series(runs[name].rows, key)
            lines.append(Line(name, x, smooth(y, s.smooth), COLORS[i]))
        panels.append((f"{title} ({s.smooth}-step mean)", key, lines))
    held_lines = []
    for i, name in enumerate(runs):
        x, y = series(runs[name].rows, s.heldout_key, train_only=False)
        held_lines.append(Line(name, x, y, COLORS[i], "-", "o"))
    panels.append(("held-out accuracy", s.heldout_key, held_lines))
    figure(exp.root / "curves.png", panels, title="proxy rewards: training curves", cols=3)

    return finding_section(
        exp,
        blocks=[
            f"### Per reward (mean of the first → last {w} steps)\n\n"
            + table(["reward", *KEYS.values(), "held-out start", "held-out end", "held-out gain"], table_rows),
            "![proxy-reward training curves]({fig:curves.png})",
        ],
        pre=pre,
        checks=checks,
        results=results,
        probe_label=lambda r: (r["labels"]["reward"],),
        label_columns=["model"],
        finding="proxy",
        title=TITLE,
        claim=CLAIM,
        figures=["curves.png"],
        settings={**settings(exp, [0]), "rewards": ", ".join(REWARDS)},
    )
