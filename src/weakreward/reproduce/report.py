"""The reports of `weakreward reproduce`: curves from the run folders, figures, markdown tables, and the
verdict rule.

**The verdict rule** (the same for every finding, applied to numbers, never by hand):

1. A finding states *preconditions* (e.g. "the true reward taught the model something") and *checks*
   (e.g. "the smallest N saturates before the largest"). Each check is ``pass``, ``fail`` (the opposite of
   the paper's claim, beyond the noise margin) or ``unclear`` (within the margin); a check over several
   seeds passes when it passes in every seed, fails when it fails in some seed and passes in none, and is
   unclear otherwise.
2. Verdict: any precondition unmet → **inconclusive**; else every check passes → **reproduced in
   shape**; else any check fails → **not reproduced**; else → **inconclusive**.
3. The noise margin of a difference of two held-out accuracies ``p1``, ``p2`` each measured on ``m``
   samples is two binomial standard errors, ``2·sqrt(p1(1−p1)/m + p2(1−p2)/m)`` with each ``p`` smoothed
   to ``(p·m + 1)/(m + 2)`` (it ignores that samples of one problem are correlated, so it is, if
   anything, too small). "End" accuracy is the mean of the last
   two evaluations (``m`` = 2 × problems × samples); "start" is the evaluation at step 0.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VERDICTS = ("reproduced in shape", "not reproduced", "inconclusive")
FINDINGS = ("scarce", "noise", "proxy")

LIMITS = """\
- **One model.** The paper contrasts model families (Qwen2.5-Math generalises where Llama-3.2 memorises).
  One 135M model is in one regime, so "faithfulness before RL predicts the regime" (finding 4) cannot be
  tested here: the probes are reported, but there is nothing to correlate them with.
- **A one-step task.** ``a ± b`` answered in about ten tokens has no chain of reasoning: the faithfulness
  probes (arithmetic claims, answer follows, early answering) measure little, and completion length can
  hardly grow or shrink within ``max_new_tokens``.
- **A tiny budget.** Tens of steps of a few dozen completions (the paper: 496 steps of 512), LoRA on the
  top layers, no KL term. The saturation tail and rapid-saturation cut-off are scaled from the paper's
  50 and 100 of 496 steps, and the training reward is smoothed over a few steps; a step's reward is the
  mean of one small batch.
- **In-distribution held-out set.** The held-out problems are unseen problems of the same arithmetic, not
  a transfer benchmark like MATH-500, so "generalisation" here is to new operands, not new tasks.
- **Noise.** Held-out accuracy differences within the stated margin (about ±0.12) are noise, and only the
  scarce sweep has a second seed.
"""


# -- reading runs ---------------------------------------------------------------------------------


def read_rows(folder: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """``metrics.jsonl`` of a run as ``{step: merged row}`` (torn lines skipped, later lines win)."""
    rows: dict[int, dict[str, Any]] = {}
    path = Path(folder) / "metrics.jsonl"
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.setdefault(row["step"], {}).update(row)
    return dict(sorted(rows.items()))


def series(
    rows: Mapping[int, Mapping[str, Any]], key: str, *, train_only: bool = True
) -> tuple[list[int], list[float]]:
    """The steps at which ``key`` was logged and its values (None → NaN).

    Args:
        rows: A run's rows (`read_rows`).
        key: The metric, e.g. ``"reward/mean"``.
        train_only: Skip step 0 (the evaluation before training).

    Returns:
        ``(steps, values)``; a non-numeric value is NaN.
    """
    steps, values = [], []
    for step, row in rows.items():
        if key in row and (step > 0 or not train_only):
            steps.append(step)
            v = row[key]
            values.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan)
    return steps, values


def window_mean(values: Sequence[float], width: int, *, last: bool) -> float:
    """Mean of the first (or last) ``width`` finite values; NaN when none.

    Args:
        values: A curve (NaN entries are skipped before the window is taken).
        width: Finite values averaged.
        last: Average the last ``width`` values instead of the first.
    """
    finite = [v for v in values if math.isfinite(v)]
    chunk = finite[-width:] if last else finite[:width]
    return float(np.mean(chunk)) if chunk else math.nan


@dataclass
class Heldout:
    """Held-out accuracy of a run: at step 0, at the end (mean of the last two evaluations), and the gain."""

    start: float
    end: float
    m_start: int
    m_end: int

    @property
    def gain(self) -> float:
        return self.end - self.start


def heldout(rows: Mapping[int, Mapping[str, Any]], key: str, samples_per_eval: int) -> Heldout:
    """`Heldout` from a run's rows (``samples_per_eval`` = held-out problems × samples).

    Args:
        rows: A run's rows (`read_rows`).
        key: The held-out metric, e.g. ``"eval/avg@2"``.
        samples_per_eval: Samples behind one evaluation: ``m_start``, and ``m_end`` per evaluation averaged.

    Returns:
        Start: the step-0 evaluation (else the first finite one); end: the mean of the last two finite
        evaluations (the only one where there is one); NaN where there is none.
    """
    steps, values = series(rows, key, train_only=False)
    pairs = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]
    start = next((v for s, v in pairs if s == 0), pairs[0][1] if pairs else math.nan)
    tail = [v for _, v in pairs[-2:]] if len(pairs) > 1 else [v for _, v in pairs]
    end = float(np.mean(tail)) if tail else math.nan
    return Heldout(start, end, samples_per_eval, samples_per_eval * max(1, len(tail)))


def margin(p1: float, m1: int, p2: float, m2: int) -> float:
    """Two binomial standard errors of ``p1 − p2`` (the noise margin of the verdict rule).

    Each ``p`` is smoothed to ``(p·m + 1) / (m + 2)`` first, so the margin is never 0 at ``p = 0`` or 1.

    Args:
        p1: The first accuracy, in ``[0, 1]``.
        m1: Samples behind ``p1`` (values below 1 count as 1).
        p2: The second accuracy.
        m2: Samples behind ``p2``.

    Returns:
        The margin; NaN when ``p1`` or ``p2`` is not finite.

    Examples:
        >>> round(margin(0.3, 80, 0.3, 80), 3)  # 2·sqrt(2 · p'(1 − p') / 80), p' = 25/82
        0.146
        >>> margin(0.0, 80, 0.0, 80) > 0
        True
    """
    if not (math.isfinite(p1) and math.isfinite(p2)):
        return math.nan
    m1, m2 = max(1, m1), max(1, m2)
    q1, q2 = (p1 * m1 + 1) / (m1 + 2), (p2 * m2 + 1) / (m2 + 2)
    return 2.0 * math.sqrt(q1 * (1 - q1) / m1 + q2 * (1 - q2) / m2)


def compare(diff: float, noise: float) -> str:
    """``pass`` if ``diff`` exceeds ``noise``, ``fail`` if it is below ``−noise``, else ``unclear``.

    Args:
        diff: The measured difference, signed so that positive is the paper's direction.
        noise: Its noise margin (e.g. `margin`); a NaN on either side is ``unclear``.

    Examples:
        >>> compare(0.2, 0.1), compare(-0.2, 0.1), compare(0.05, 0.1), compare(float("nan"), 0.1)
        ('pass', 'fail', 'unclear', 'unclear')
    """
    if not (math.isfinite(diff) and math.isfinite(noise)):
        return "unclear"
    if diff > noise:
        return "pass"
    if diff < -noise:
        return "fail"
    return "unclear"


def combine(outcomes: Iterable[str]) -> str:
    """One check over several seeds: pass if all pass, fail if some fail and none pass, else unclear.

    Examples:
        >>> combine(["pass", "pass"]), combine(["fail", "unclear"]), combine(["pass", "fail"])
        ('pass', 'fail', 'unclear')
    """
    outcomes = list(outcomes)
    if outcomes and all(o == "pass" for o in outcomes):
        return "pass"
    if "fail" in outcomes and "pass" not in outcomes:
        return "fail"
    return "unclear"


# -- verdicts -------------------------------------------------------------------------------------


@dataclass
class Check:
    """One named test of a finding: ``outcome`` is ``pass`` / ``fail`` / ``unclear`` (a precondition:
    ``pass`` = met)."""

    name: str
    outcome: str
    detail: str


def verdict(preconditions: Sequence[Check], checks: Sequence[Check]) -> tuple[str, str]:
    """The verdict and its reason by the module's rule.

    Args:
        preconditions: Checks that must all pass (be met) for any verdict but **inconclusive**.
        checks: The finding's checks.

    Returns:
        ``(verdict, reason)``: one of `VERDICTS`, and the checks that decided it.

    Examples:
        >>> ok = Check("learned", "pass", "")
        >>> verdict([ok], [Check("a", "pass", ""), Check("b", "pass", "")])[0]
        'reproduced in shape'
        >>> verdict([ok], [Check("a", "pass", ""), Check("b", "fail", "b went the other way")])
        ('not reproduced', 'failed: b (b went the other way)')
        >>> verdict([Check("learned", "fail", "no gain")], [Check("a", "pass", "")])
        ('inconclusive', 'precondition not met: learned (no gain)')
    """
    unmet = [c for c in preconditions if c.outcome != "pass"]
    if unmet:
        return "inconclusive", "; ".join(f"precondition not met: {c.name} ({c.detail})" for c in unmet)
    if all(c.outcome == "pass" for c in checks):
        return "reproduced in shape", "every check passed: " + "; ".join(c.name for c in checks)
    failed = [c for c in checks if c.outcome == "fail"]
    if failed:
        return "not reproduced", "; ".join(f"failed: {c.name} ({c.detail})" for c in failed)
    unclear = [c for c in checks if c.outcome != "pass"]
    return "inconclusive", "; ".join(f"within the noise: {c.name} ({c.detail})" for c in unclear)


# -- markdown -------------------------------------------------------------------------------------


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: numbers rounded, None / NaN as ``n/a``.

    Args:
        x: The value; a bool is ``yes`` / ``no``, a float is rounded, anything else goes through ``str``.
        digits: Decimals of a float.
    """
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"
    return str(x)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table.

    Args:
        headers: The column names.
        rows: The rows, each cell formatted by `fmt`.
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def checks_table(preconditions: Sequence[Check], checks: Sequence[Check]) -> str:
    """A finding's preconditions and checks as one markdown table (kind, test, outcome, numbers).

    Args:
        preconditions: The finding's preconditions (listed first).
        checks: Its checks.
    """
    rows = [("precondition", c.name, c.outcome, c.detail) for c in preconditions]
    rows += [("check", c.name, c.outcome, c.detail) for c in checks]
    return table(["kind", "test", "outcome", "numbers"], rows)


@dataclass
class Section:
    """One finding's report: markdown with ``{fig:NAME.png}`` placeholders, its figures, its verdict."""

    finding: str
    title: str
    claim: str
    markdown: str
    figures: list[str]
    verdict: str
    reason: str
    wall_s: float
    settings: dict[str, Any] = field(default_factory=dict)

    def render(self, figure_link: Mapping[str, str]) -> str:
        body = re.sub(r"\{fig:([\w.-]+)\}", lambda m: figure_link.get(m.group(1), m.group(1)), self.markdown)
        return (
            f"## {self.title}\n\n*The paper:* {self.claim}\n\n**Verdict: {self.verdict}.** {self.reason}.\n\n"
            f"{body}\n\nWall time of `weakreward reproduce {self.finding}`: {wall(self.wall_s)}.\n"
        )


def wall(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s"


def settings_table(settings: Mapping[str, Any]) -> str:
    return table(["setting", "value"], [(k, v) for k, v in settings.items()])


def write_section(folder: Path, section: Section) -> Path:
    """Write ``section.json`` and the folder's own ``report.md`` (figures linked next to it).

    Args:
        folder: The finding's folder, which holds its figures; both files are overwritten there.
        section: The finding's report.

    Returns:
        The path of ``report.md``.
    """
    (folder / "section.json").write_text(json.dumps(asdict(section), indent=2), encoding="utf-8")
    text = (
        f"# weakreward reproduce {section.finding}\n\n"
        + section.render({f: f for f in section.figures})
        + "\n## Settings\n\n"
        + settings_table(section.settings)
        + "\n\n## What a run this small cannot show\n\n"
        + LIMITS
    )
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def combined_report(root: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """``docs/reproduction.md``-ready markdown from the finished commands under ``root``.

    Reads ``root/<finding>/section.json`` for each finding that has one, copies its figures into a folder
    named after ``out`` (``docs/reproduction.md`` → ``docs/reproduction/``), and links them from there.

    Args:
        root: The folder holding one subfolder per finished command (``root/scarce``, ...).
        out: The markdown file to write (overwritten; its folder is created).

    Returns:
        ``out``.

    Raises:
        FileNotFoundError: no finding under ``root`` has finished.
    """
    root, out = Path(root), Path(out)
    sections = []
    for finding in FINDINGS:
        path = root / finding / "section.json"
        if path.exists():
            sections.append((root / finding, Section(**json.loads(path.read_text(encoding="utf-8")))))
    if not sections:
        raise FileNotFoundError(f"no finished finding under {root} (expected {root}/scarce/section.json, ...)")
    assets = out.with_suffix("")
    assets.mkdir(parents=True, exist_ok=True)
    parts = [
        "# The paper at small scale\n",
        "Three findings of arXiv 2604.18574, rerun with `weakreward reproduce` on the embedded "
        "SmolLM2-135M-Instruct, learning `a ± b` arithmetic with GRPO on a 2-core CPU. Each verdict follows "
        "from the numbers by one rule, stated below; no setting was tuned to match the paper.\n",
        table(
            ["finding", "verdict", "command", "wall time"],
            [(s.title, f"**{s.verdict}**", f"`weakreward reproduce {s.finding}`", wall(s.wall_s)) for _, s in sections],
        ),
        "",
    ]
    for folder, section in sections:
        links = {}
        for name in section.figures:
            target = assets / f"{section.finding}-{name}"
            shutil.copyfile(folder / name, target)
            links[name] = f"{assets.name}/{target.name}"
        parts.append(section.render(links))
    parts += ["## Settings\n", settings_table(sections[0][1].settings), ""]
    parts += ["## How the verdicts are decided\n", _RULE, "", "## What a run this small cannot show\n", LIMITS]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


_RULE = (__doc__ or "").split("**The verdict rule**", 1)[-1].split("\n", 1)[-1].strip()


# -- figures --------------------------------------------------------------------------------------


@dataclass
class Line:
    """One curve of a panel."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str | None = None
    style: str = "-"
    marker: str | None = None


def smooth(values: Sequence[float], width: int) -> list[float]:
    """Trailing moving average over finite values (for plotting noisy per-step rewards).

    Args:
        values: The curve.
        width: Points averaged, this one and up to ``width − 1`` before it (NaN ones skipped).

    Returns:
        One value per point; NaN where the window holds no finite value.
    """
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - width + 1) : i + 1] if math.isfinite(v)]
        out.append(float(np.mean(chunk)) if chunk else math.nan)
    return out


def figure(path: Path, panels: Sequence[tuple[str, str, Sequence[Line]]], *, title: str = "", cols: int = 2) -> Path:
    """A PNG grid of line panels ``(title, y label, lines)`` on the Agg canvas (no pyplot state).

    Args:
        path: The PNG to write (its folder is created).
        panels: One ``(title, y label, lines)`` per panel, filled row by row; the x axis is the step.
        title: The figure's title; empty for none.
        cols: Panels per row.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows))
    FigureCanvasAgg(fig)
    for i, (name, ylabel, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for line in lines:
            ax.plot(line.x, line.y, line.style, color=line.color, marker=line.marker, ms=3, lw=1.4, label=line.label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
