"""The verdict rule and the report helpers of `weakreward reproduce`: margins from the binomial formula,
the pass / fail / unclear logic, held-out start and end read from a run's metrics."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward.reproduce.report import (
    Check,
    Section,
    combine,
    combined_report,
    compare,
    heldout,
    margin,
    read_rows,
    series,
    table,
    verdict,
    window_mean,
)

OUTCOMES = st.sampled_from(["pass", "fail", "unclear"])


def test_margin_is_two_standard_errors_of_the_smoothed_proportions():
    # p1 = 0.5 on m = 98 → p' = 50/100 = 0.5; p2 = 0 on m = 98 → p' = 1/100.
    expected = 2 * math.sqrt(0.5 * 0.5 / 98 + 0.01 * 0.99 / 98)
    assert margin(0.5, 98, 0.0, 98) == pytest.approx(expected)


@given(st.floats(0, 1), st.floats(0, 1), st.integers(1, 10_000), st.integers(1, 10_000))
def test_margin_is_positive_and_symmetric(p1, p2, m1, m2):
    assert margin(p1, m1, p2, m2) > 0
    assert margin(p1, m1, p2, m2) == pytest.approx(margin(p2, m2, p1, m1))


def test_margin_shrinks_with_more_samples():
    assert margin(0.3, 400, 0.3, 400) < margin(0.3, 100, 0.3, 100)


def test_compare_needs_the_difference_beyond_the_margin():
    assert [compare(d, 0.1) for d in (0.11, 0.1, -0.1, -0.11)] == ["pass", "unclear", "unclear", "fail"]


@given(st.lists(OUTCOMES, min_size=1, max_size=5), st.randoms())
def test_combining_seeds_ignores_their_order(outcomes, rnd):
    shuffled = list(outcomes)
    rnd.shuffle(shuffled)
    assert combine(outcomes) == combine(shuffled)


def test_a_check_fails_over_seeds_only_when_no_seed_passes():
    assert combine(["fail", "fail"]) == "fail"
    assert combine(["fail", "pass"]) == "unclear"
    assert combine(["unclear", "unclear"]) == "unclear"


def test_an_unmet_precondition_makes_any_result_inconclusive():
    outcome, reason = verdict([Check("learned", "fail", "gain +0.01")], [Check("a", "fail", "")])
    assert outcome == "inconclusive"
    assert "learned" in reason and "gain +0.01" in reason


def test_a_failed_check_beats_an_unclear_one():
    ok = [Check("learned", "pass", "")]
    assert verdict(ok, [Check("a", "unclear", ""), Check("b", "fail", "")])[0] == "not reproduced"
    assert verdict(ok, [Check("a", "unclear", ""), Check("b", "pass", "")])[0] == "inconclusive"


def _write_metrics(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 9, "torn'
    (folder / "metrics.jsonl").write_text(text)


def test_heldout_reads_step_zero_and_the_mean_of_the_last_two_evaluations(tmp_path):
    _write_metrics(
        tmp_path,
        [
            {"step": 0, "eval/avg@2": 0.2},
            {"step": 1, "reward/mean": 0.1},
            {"step": 2, "reward/mean": 0.3, "eval/avg@2": 0.4},
            {"step": 3, "reward/mean": None},
            {"step": 4, "reward/mean": 0.5, "eval/avg@2": 0.5},
        ],
    )
    rows = read_rows(tmp_path)
    held = heldout(rows, "eval/avg@2", samples_per_eval=80)
    assert (held.start, held.end, held.m_end) == (0.2, 0.45, 160)
    assert held.gain == pytest.approx(0.25)
    steps, rewards = series(rows, "reward/mean")
    assert steps == [1, 2, 3, 4] and math.isnan(rewards[2])
    assert window_mean(rewards, 2, last=True) == pytest.approx(0.4)  # NaN steps skipped: (0.3 + 0.5) / 2


def test_table_writes_missing_numbers_as_na():
    assert table(["a", "b"], [(0.12345, None)]).splitlines()[-1] == "| 0.123 | n/a |"


def test_combined_report_links_copied_figures_and_lists_every_finished_finding(tmp_path):
    png = b"\x89PNG\r\n\x1a\nfake"
    for finding in ("scarce", "proxy"):
        folder = tmp_path / "runs" / finding
        folder.mkdir(parents=True)
        (folder / "curves.png").write_bytes(png)
        section = Section(
            finding, f"{finding} title", "claim", "![x]({fig:curves.png})", ["curves.png"], "inconclusive", "why", 61.0
        )
        (folder / "section.json").write_text(json.dumps(section.__dict__))
    out = combined_report(tmp_path / "runs", tmp_path / "docs" / "reproduction.md")
    text = out.read_text()
    assert "![x](reproduction/scarce-curves.png)" in text and "![x](reproduction/proxy-curves.png)" in text
    assert (tmp_path / "docs" / "reproduction" / "proxy-curves.png").read_bytes() == png
    assert "noise title" not in text and "1 min 01 s" in text
    assert "How the verdicts are decided" in text and "What a run this small cannot show" in text


def test_combined_report_without_any_finished_finding_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="section.json"):
        combined_report(tmp_path, tmp_path / "out.md")
