"""MathVerifier: a regression table from real MATH-500 answers, hostile inputs, threads, pickling,
and worker replacement."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import threading
import time
from pathlib import Path

import pytest

from weakreward import MathVerifier, Rollouts
from weakreward.rewards import timeout_pool as pool_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDS = [json.loads(line)["gold"] for line in (FIXTURES / "math500_golds.jsonl").read_text().splitlines()]
GOLD = {i: g for i, g in enumerate(GOLDS)}


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=2, timeout=10.0).start()
    yield v
    v.close()


@pytest.fixture(scope="module")
def hostile_verifier():
    v = MathVerifier(workers=2, timeout=1.0).start()
    yield v
    v.close()


def _perturb(gold: str) -> str | None:
    """The gold with its first digit changed (d -> d+1 mod 10): a different answer."""
    for k, ch in enumerate(gold):
        if ch.isdigit():
            return gold[:k] + str((int(ch) + 1) % 10) + gold[k + 1 :]
    return None


def test_fixture_holds_all_of_math500() -> None:
    assert len(GOLDS) == 500
    assert GOLD[444] == r"\frac{1}{2}"


def test_every_math500_gold_boxed_matches_itself(verifier: MathVerifier) -> None:
    start = time.perf_counter()
    result = verifier.score([f"\\boxed{{{g}}}" for g in GOLDS], references=GOLDS)
    elapsed = time.perf_counter() - start
    failures = [(g, r) for g, s, r in zip(GOLDS, result.scores, result.details["reason"]) if s != 1.0]
    assert failures == []
    assert set(result.details["reason"]) == {"match"}
    assert elapsed < 120, f"500 self-checks took {elapsed:.1f} s"


def test_perturbed_math500_golds_score_zero(verifier: MathVerifier) -> None:
    pairs = [(g, _perturb(g)) for g in GOLDS[::4]]
    pairs = [(g, p) for g, p in pairs if p is not None]
    assert len(pairs) > 100
    result = verifier.score([f"\\boxed{{{p}}}" for _, p in pairs], references=[g for g, _ in pairs])
    wrong = [(g, p, r) for (g, p), s, r in zip(pairs, result.scores, result.details["reason"]) if s != 0.0]
    assert wrong == []
    assert set(result.details["reason"]) == {"mismatch"}


# Equivalent forms of real MATH-500 golds (problem index, completion) that must score 1.
EQUIVALENTS = [
    (444, r"\boxed{0.5}"),
    (444, "The answer is 1/2."),
    (444, r"\boxed{\dfrac12}"),
    (444, r"So it is $\frac{1}{2}$"),
    (48, r"\boxed{1.5}"),
    (48, r"\boxed{3/2}"),
    (44, r"\boxed{\frac54}"),
    (0, r"\boxed{(3, \pi/2)}"),
    (8, r"\boxed{\sqrt{117}}"),
    (20, r"\boxed{9i+6}"),
    (36, r"\boxed{7, 5, 3}"),
    (100, r"\boxed{145}"),
    (164, r"\boxed{-\sqrt3}"),
    (176, r"\boxed{6.72 \times 10^{-5}}"),
    (184, r"\boxed{(2, \infty)}"),
    (232, r"\boxed{998.5}"),
    (248, r"\boxed{\begin{pmatrix}-1&0\\0&-1\end{pmatrix}}"),
    (264, r"\boxed{\frac{9}{5}}"),
    (284, r"\boxed{3 + 2\sqrt{2}, 3 - 2\sqrt{2}}"),
    (320, r"\boxed{-0.96}"),
    (336, r"\boxed{26,000}"),
    (352, r"\boxed{11+11\sqrt{5}}"),
    (380, r"\boxed{(9,36) \cup (0,9)}"),
    (384, r"\boxed{-80 + 15x}"),
    (408, r"\boxed{\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}}"),
    (456, r"\boxed{1, -2}"),
    (472, r"\boxed{137.5}"),
    (488, r"\boxed{\$36.00}"),
    (496, r"\boxed{\frac{10}{26}}"),
    (4, r"\boxed{Evelyn}"),
    (296, r"\boxed{B}"),
    (16, r"The final answer is $-50$"),
    (12, "So we get 284."),
    (400, r"\boxed{4\frac{2}{3}}"),
]


def test_equivalent_forms_of_math500_golds_match(verifier: MathVerifier) -> None:
    result = verifier.score([c for _, c in EQUIVALENTS], references=[GOLD[i] for i, _ in EQUIVALENTS])
    misses = [(GOLD[i], c, r) for (i, c), s, r in zip(EQUIVALENTS, result.scores, result.details["reason"]) if s != 1.0]
    assert misses == []


def test_compare_clusters_equivalent_answers(verifier: MathVerifier) -> None:
    forms = [r"\frac12", "0.5", "1/2", r"\dfrac{1}{2}", "2/4", "0.50"]
    golds = [a for a in forms for _ in forms]
    answers = [b for _ in forms for b in forms]
    verdicts = verifier.compare(golds, answers)
    assert [(g, a) for g, a, v in zip(golds, answers, verdicts) if not v.match] == []
    wrong = verifier.compare([r"\frac12", "0.5", "x"], ["0.6", r"\frac13", "y"])
    assert [v.match for v in wrong] == [False, False, False]
    assert [v.reason for v in wrong] == ["mismatch"] * 3


def test_compare_rejects_length_mismatch(verifier: MathVerifier) -> None:
    with pytest.raises(ValueError, match="2 golds but 1 answers"):
        verifier.compare(["1", "2"], ["1"])


def test_reasons_and_nan_for_missing_reference(verifier: MathVerifier) -> None:
    result = verifier.score(
        [r"\boxed{4}", r"\boxed{5}", "", "no math words", r"\boxed{4}"], references=["4", "4", "4", "4", None]
    )
    assert result.scores[:4].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert math.isnan(result.scores[4])
    assert result.details["reason"] == ["match", "mismatch", "no answer", "no answer", "no reference"]
    assert result.details["answer"][0] == "4"
    assert result.details["answer"][2] is None


def test_extract_uses_the_last_box(verifier: MathVerifier) -> None:
    assert verifier.extract(r"first \boxed{1}, finally \boxed{\frac{2}{3}}") == r"\frac{2}{3}"
    assert verifier.extract("nothing") is None
    assert verifier.extract("so 1,250 + 2 = 1,252 in total") is None
    assert verifier.extract(r"The answer is 7. \boxed{8") == "7"


def test_long_completion_is_cut_to_its_tail() -> None:
    with MathVerifier(workers=1, max_chars=100) as v:
        head = r"\boxed{7} " + "filler " * 100
        result = v.score([head + r"so \boxed{3}", head], references=["3", "7"])
    # The second completion's only box lies before its last 100 characters.
    assert result.scores.tolist() == [1.0, 0.0]
    assert result.details["reason"][1] == "no answer"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("timeout", 0),
        ("timeout", float("inf")),
        ("max_chars", 0),
        ("chunk_size", 1.5),
        ("memory_limit_mb", -1),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"MathVerifier.{field}: "):
        MathVerifier(**{field: value})


_SENTINEL_DIR = Path("/tmp")


def _injections(tag: str) -> list[str]:
    target = _SENTINEL_DIR / f"weakreward-injection-{tag}-{os.getpid()}"
    cmd = f"__import__('os').system('touch {target}')"
    return [
        cmd,
        f"The answer is {cmd}",
        f"\\boxed{{{cmd}}}",
        f"${cmd}$",
        f'eval("{cmd}")',
        f"x = exec(\"open('{target}', 'w')\")",
        f"(lambda: {cmd})()",
    ]


HOSTILE = {
    "nested exponent boxed": r"\boxed{9^{9^{9^{9^{9}}}}}",
    "nested exponent inline": r"The answer is $9^{9^{9^{9^{9}}}}$",
    "power tower": r"\boxed{10^{10^{10^{10}}}}",
    "python power tower": "2**2**2**2**2**2",
    "one megabyte": "x" * 1_000_000,
    "one megabyte of math": "1+" * 500_000 + "1",
    "unbalanced braces": r"\boxed{" * 1000,
    "closing braces": r"\boxed{1}" + "}" * 1000,
    "open braces": "{" * 100_000,
    "nested fractions": "\\frac{" * 3000 + "1" + "}{2}" * 3000,
    "big matrix": r"\boxed{\begin{pmatrix}" + "1&" * 3000 + r"1\end{pmatrix}}",
    "empty": "",
    "whitespace": " \n\t",
    "control characters": "\x00\x01\x02",
    "lone backslashes": "\\" * 10_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_completion_returns_within_timeout(hostile_verifier: MathVerifier, name: str) -> None:
    # The guarantee is for a verifier whose workers are up: a replacement for a worker killed by an
    # earlier timeout may still be starting (start-up is a one-off cost, not an item's).
    hostile_verifier.start()
    start = time.perf_counter()
    result = hostile_verifier.score([HOSTILE[name]], references=["1"])
    elapsed = time.perf_counter() - start
    assert elapsed < hostile_verifier.timeout + 1.0, f"{name} took {elapsed:.2f} s"
    assert result.scores[0] in (0.0, 1.0)
    assert result.details["reason"][0] in {
        "match",
        "mismatch",
        "no answer",
        "timeout",
        "too_complex",
    } or result.details["reason"][0].startswith("error: ")
    hostile_verifier.start()
    start = time.perf_counter()
    verdict = hostile_verifier.compare(["1"], [HOSTILE[name]])[0]
    assert time.perf_counter() - start < hostile_verifier.timeout + 1.0
    assert isinstance(verdict.match, bool)


def test_pathological_exponent_times_out_and_later_items_still_verify() -> None:
    # The screen off: the hard timeout is the last defence for what the screen misses.
    with MathVerifier(workers=1, timeout=1.5, screen=False).start() as v:
        pid_before = v._pool.workers[0].process.pid
        start = time.perf_counter()
        result = v.score(
            [r"\boxed{10^{10^{10^{10}}}}", r"\boxed{3}", r"\boxed{\frac{1}{2}}"], references=["1", "3", "0.5"]
        )
        elapsed = time.perf_counter() - start
        assert result.details["reason"] == ["timeout", "match", "match"]
        assert result.scores.tolist() == [0.0, 1.0, 1.0]
        # One timeout, then a fresh worker (its start-up is not charged to the items).
        assert elapsed < 1.5 + 30
        pids_after = [w.process.pid for w in v._pool.workers]
        assert pid_before not in pids_after
        assert v.score([r"\boxed{2}"], references=["2"]).scores.tolist() == [1.0]


# Answers over the screening budget (MathVerifier's docstring), each of which times out unscreened.
OVER_BUDGET = {
    "power tower": r"\boxed{9^{9^{9}}}",
    "tower of two with a huge exponent": r"\boxed{10^{10^{10}}}",
    "python power tower": "The answer is 2**2**2**2**2**2",
    "factorial of a power": r"\boxed{(10^{10})!}",
    "factorial of a large literal": r"\boxed{100000000!}",
    "symbol to a huge power": r"\boxed{x^{10^{10^{10}}}}",
    "2000 nested parentheses": r"\boxed{" + "(" * 2000 + "1" + ")" * 2000 + "}",
    "1000 nested fractions": "\\boxed{" + "\\frac{" * 1000 + "1" + "}{2}" * 1000 + "}",
    "a 3000-entry matrix": r"\boxed{\begin{pmatrix}" + "1&" * 3000 + r"1\end{pmatrix}}",
}


@pytest.mark.parametrize("name", sorted(OVER_BUDGET))
def test_over_budget_answers_are_too_complex_without_a_timeout(hostile_verifier: MathVerifier, name: str) -> None:
    hostile_verifier.start()
    pids = {w.process.pid for w in hostile_verifier._pool.workers}
    start = time.perf_counter()
    result = hostile_verifier.score([OVER_BUDGET[name], r"\boxed{2}"], references=["1", "2"])
    assert time.perf_counter() - start < 0.5
    assert result.details["reason"] == ["too_complex", "match"]
    assert result.scores.tolist() == [0.0, 1.0]
    # No worker was killed for it.
    assert {w.process.pid for w in hostile_verifier._pool.workers} == pids
    assert hostile_verifier.compare(["1"], [OVER_BUDGET[name].removeprefix("The answer is ")])[0].reason == (
        "too_complex"
    )


@pytest.mark.parametrize(
    "answer",
    [r"2^{2011}", r"2^{2^{10}}", r"100000!", r"(2^{10})!", r"x^{x^{x^{x}}}", "((((((((1))))))))", r"10^{100}"],
)
def test_large_but_feasible_answers_pass_the_screen(hostile_verifier: MathVerifier, answer: str) -> None:
    assert hostile_verifier.compare(["1"], [answer])[0].reason != "too_complex"


def test_no_math500_gold_or_perturbed_gold_is_too_complex(verifier: MathVerifier) -> None:
    answers = GOLDS + [p for p in map(_perturb, GOLDS) if p is not None]
    result = verifier.score([f"\\boxed{{{a}}}" for a in answers], references=["0"] * len(answers))
    assert "too_complex" not in result.details["reason"]
    assert "too_complex" not in {v.reason for v in verifier.compare(["0"] * len(answers), answers)}


@pytest.mark.parametrize("tag", ["score", "compare"])
def test_code_injection_is_never_executed(hostile_verifier: MathVerifier, tag: str) -> None:
    texts = _injections(tag)
    target = _SENTINEL_DIR / f"weakreward-injection-{tag}-{os.getpid()}"
    target.unlink(missing_ok=True)
    if tag == "score":
        result = hostile_verifier.score(texts, references=["0"] * len(texts))
        assert result.scores.tolist() == [0.0] * len(texts)
    else:
        verdicts = hostile_verifier.compare(["0"] * len(texts), texts)
        assert [v.match for v in verdicts] == [False] * len(texts)
    assert not target.exists()


def test_worker_killed_mid_item_is_replaced() -> None:
    with MathVerifier(workers=1, timeout=30, screen=False).start() as v:
        victim = v._pool.workers[0].process.pid
        killer = threading.Timer(1.0, lambda: os.kill(victim, signal.SIGKILL))
        killer.start()
        try:
            result = v.score([r"\boxed{10^{10^{10^{10}}}}", r"\boxed{5}"], references=["1", "5"])
        finally:
            killer.cancel()
        assert result.details["reason"] == ["error: worker died", "match"]


def test_verification_from_worker_threads(verifier: MathVerifier) -> None:
    outputs: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            completions = [rf"\boxed{{{k}}}", rf"\boxed{{{k + 1}}}", r"\boxed{\frac{1}{2}}"]
            outputs[k] = verifier.score(completions, references=[str(k), str(k), "0.5"]).scores.tolist()
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert outputs == {k: [1.0, 0.0, 1.0] for k in range(6)}


def test_pickle_round_trip_gives_an_independent_working_copy(verifier: MathVerifier) -> None:
    copy = pickle.loads(pickle.dumps(verifier))
    try:
        assert (copy.workers, copy.timeout, copy.max_chars, copy.name) == (
            verifier.workers,
            verifier.timeout,
            verifier.max_chars,
            verifier.name,
        )
        assert copy._pool is not verifier._pool
        assert copy._pool.workers == []  # workers start on first use
        assert copy.score([r"\boxed{0.25}"], references=[r"\frac14"]).scores.tolist() == [1.0]
        ours = {w.process.pid for w in verifier._pool.workers}
        theirs = {w.process.pid for w in copy._pool.workers}
        assert ours.isdisjoint(theirs)
    finally:
        copy.close()


def test_close_stops_workers_and_next_call_restarts() -> None:
    v = MathVerifier(workers=1)
    assert v.score([r"\boxed{1}"], references=["1"]).scores.tolist() == [1.0]
    process = v._pool.workers[0].process
    v.close()
    assert process.poll() is not None
    assert v.score([r"\boxed{1}"], references=["1"]).scores.tolist() == [1.0]
    v.close()


def test_a_worker_that_cannot_start_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "_BOOT", "raise SystemExit(3)")
    v = MathVerifier(workers=1)
    with pytest.raises(RuntimeError, match="worker exited while starting"):
        v.score([r"\boxed{1}"], references=["1"])
    v.close()


def test_scores_a_rollouts_batch_with_groups(verifier: MathVerifier) -> None:
    rollouts = Rollouts.build(
        [r"\boxed{4}", r"\boxed{5}", r"\boxed{2\sqrt{2}}", r"\boxed{\sqrt{8}}"],
        prompts=["2+2?", "2+2?", "sqrt 8?", "sqrt 8?"],
        references=["4", "4", r"\sqrt{8}", r"2\sqrt2"],
    )
    assert verifier(rollouts).scores.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_an_interrupted_call_leaves_the_verifier_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    with MathVerifier(workers=1).start() as v:
        real_wait = pool_module.wait
        calls = {"n": 0}

        def interrupted_once(conns, timeout=None):
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt
            return real_wait(conns, timeout)

        monkeypatch.setattr(pool_module, "wait", interrupted_once)
        with pytest.raises(KeyboardInterrupt):
            v.score([r"\boxed{1}", r"\boxed{2}"], references=["1", "1"])
        monkeypatch.setattr(pool_module, "wait", real_wait)
        # The interrupted call's results ("match", "mismatch") must not leak into this one.
        result = v.score([r"\boxed{3}", r"\boxed{4}"], references=["4", "4"])
        assert result.details["reason"] == ["mismatch", "match"]
