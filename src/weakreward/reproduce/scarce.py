"""Finding 1, scarce data: ``weakreward reproduce scarce``.

A sweep over the number ``N`` of distinct training problems (repeated to fill the batches, as the paper's
``sky_math_8`` repeats its 8), two seeds, the true verifier as reward. Per run, `weakreward.dynamics`
gives ``t_sat``, ``Δ_sat`` and ``Δ*_post``; per seed, ``G_sat = Δ_sat(largest N) − Δ_sat(N)``.

Checks (per seed, combined over seeds by `weakreward.reproduce.report.combine`):

- *small data saturates first*: ``t_sat`` of the smallest N is earlier than that of the largest (a run
  that never saturates counts as ``T + 1``);
- *large data generalises more*: the held-out gain ``M(end) − M(0)`` of the largest N exceeds that of the
  smallest by more than the noise margin.

Precondition: some run's training reward rose by at least 0.1 (else there is no saturation to read).
"""

from __future__ import annotations

import math
from typing import Any

from weakreward.dynamics import SaturationReport, saturation_gap
from weakreward.reproduce.report import (
    COLORS,
    Check,
    Line,
    Section,
    combine,
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

TITLE = "Scarce data: saturation governs generalisation"
CLAIM = (
    "with few training problems the training reward saturates fast and the model memorises; with many, a "
    "long pre-saturation phase in which training reward and held-out accuracy rise together (t_sat 302 for "
    "Qwen2.5-Math-1.5B against 55 for Llama-3.2-3B-Instruct on 8 problems)"
)
NS = (4, 16, 64)
SEEDS = (0, 1)
SMOKE_NS = (2, 4)


def plan(exp: Experiment) -> list[RunSpec]:
    """One run per (seed, N)."""
    ns = SMOKE_NS if exp.smoke else NS
    return [
        RunSpec(
            name=f"n{n}-seed{seed}",
            reward=exp.verifier,
            train=training_set(exp.pool, n, seed, exp.sizes.prompts_per_step),
            seed=seed,
            labels={"N": n, "seed": seed},
        )
        for seed in SEEDS
        for n in ns
    ]


def _t(report: SaturationReport, steps: int) -> int:
    return steps + 1 if report.t_sat is None else report.t_sat


def analyse(exp: Experiment, results: list[dict[str, Any]], specs: list[RunSpec]) -> Section:
    """The scarce-data report: a table per (N, seed), the saturation and generalisation checks, figures, probes.

    Reads each run's ``metrics.jsonl`` back from ``exp.root``, applies the module's checks by the verdict rule
    (`weakreward.reproduce.report.verdict`) and writes ``curves.png`` into ``exp.root``.

    Args:
        exp: The finding's experiment (its sizes, held-out set and run folders).
        results: Each run's ``result.json`` dict, as `Experiment.run` returned them (for the probes).
        specs: The runs of `plan`, in the same order as ``results``.

    Returns:
        The finding's report `Section`.
    """
    s = exp.sizes
    m = len(exp.held_out) * s.eval_samples
    ns = sorted({spec.labels["N"] for spec in specs})
    seeds = sorted({spec.labels["seed"] for spec in specs})
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    for spec in specs:
        folder = exp.root / spec.name
        rows = read_rows(folder)
        runs[(spec.labels["N"], spec.labels["seed"])] = {
            "rows": rows,
            "sat": exp.saturation_report(folder),
            "held": heldout(rows, s.heldout_key, m),
        }

    table_rows = []
    for seed in seeds:
        large = runs[(ns[-1], seed)]["sat"]
        for n in ns:
            run = runs[(n, seed)]
            sat, held = run["sat"], run["held"]
            _, rewards = series(run["rows"], "reward/mean")
            gap = saturation_gap(large, sat) if n != ns[-1] else math.nan
            table_rows.append(
                (
                    n,
                    seed,
                    "not reached" if sat.t_sat is None else sat.t_sat,
                    sat.rapid,
                    sat.delta_sat,
                    sat.delta_post,
                    gap,
                    window_mean(rewards, 5, last=False),
                    window_mean(rewards, 5, last=True),
                    held.start,
                    held.end,
                    held.gain,
                )
            )

    learned = max(
        window_mean(series(r["rows"], "reward/mean")[1], 5, last=True)
        - window_mean(series(r["rows"], "reward/mean")[1], 5, last=False)
        for r in runs.values()
    )
    pre = [
        Check("the training reward rose in some run", "pass" if learned >= 0.1 else "fail", f"best rise {learned:+.3f}")
    ]
    order, general = [], []
    for seed in seeds:
        small, large = runs[(ns[0], seed)], runs[(ns[-1], seed)]
        t_small, t_large = _t(small["sat"], s.steps), _t(large["sat"], s.steps)
        order.append("pass" if t_small < t_large else "fail" if t_small > t_large else "unclear")
        noise = margin(large["held"].end, large["held"].m_end, small["held"].end, small["held"].m_end)
        general.append(compare(large["held"].gain - small["held"].gain, noise))
    detail_order = ", ".join(
        f"seed {seed}: t_sat {_t(runs[(ns[0], seed)]['sat'], s.steps)} (N={ns[0]}) vs "
        f"{_t(runs[(ns[-1], seed)]['sat'], s.steps)} (N={ns[-1]})"
        for seed in seeds
    )
    detail_general = ", ".join(
        f"seed {seed}: gain {runs[(ns[-1], seed)]['held'].gain:+.3f} (N={ns[-1]}) vs "
        f"{runs[(ns[0], seed)]['held'].gain:+.3f} (N={ns[0]}), margin "
        f"{margin(runs[(ns[-1], seed)]['held'].end, runs[(ns[-1], seed)]['held'].m_end, runs[(ns[0], seed)]['held'].end, runs[(ns[0], seed)]['held'].m_end):.3f}"
        for seed in seeds
    )
    checks = [
        Check(f"N={ns[0]} saturates before N={ns[-1]}", combine(order), detail_order + " (not reached = T+1)"),
        Check(f"N={ns[-1]} gains more held-out accuracy than N={ns[0]}", combine(general), detail_general),
    ]
    styles = {seed: style for seed, style in zip(seeds, ("-", "--", ":"))}
    reward_lines, held_lines = [], []
    for i, n in enumerate(ns):
        for seed in seeds:
            rows = runs[(n, seed)]["rows"]
            x, y = series(rows, "reward/mean")
            reward_lines.append(Line(f"N={n} seed {seed}", x, smooth(y, s.smooth), COLORS[i], styles[seed]))
            hx, hy = series(rows, s.heldout_key, train_only=False)
            held_lines.append(Line(f"N={n} seed {seed}", hx, hy, COLORS[i], styles[seed], "o"))
    figure(
        exp.root / "curves.png",
        [
            (f"training reward ({s.smooth}-step mean)", "reward", reward_lines),
            ("held-out accuracy", s.heldout_key, held_lines),
        ],
        title="scarce data: training reward and held-out accuracy per N",
    )
    return finding_section(
        exp,
        blocks=[
            "### Saturation per run\n\n"
            + table(
                [
                    "N",
                    "seed",
                    "t_sat",
                    "rapid",
                    "Δ_sat",
                    "Δ*_post",
                    f"G_sat (vs N={ns[-1]})",
                    "reward first 5",
                    "reward last 5",
                    "held-out start",
                    "held-out end",
                    "held-out gain",
                ],
                table_rows,
            ),
            "![training reward and held-out accuracy per N]({fig:curves.png})",
        ],
        pre=pre,
        checks=checks,
        results=results,
        probe_label=lambda r: (f"N={r['labels']['N']}", r["labels"]["seed"]),
        label_columns=["model", "seed"],
        finding="scarce",
        title=TITLE,
        claim=CLAIM,
        figures=["curves.png"],
        settings={**settings(exp, seeds), "N": ", ".join(map(str, ns))},
    )
