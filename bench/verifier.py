"""MathVerifier vs a plain sequential math-verify loop, on the MATH-500 golds.

Items: every MATH-500 gold written as ``\\boxed{gold}`` (correct) and, where the gold has a digit, the
gold with its first digit changed (wrong): ~990 (completion, reference) pairs over 500 references.

- peer: the loop a verl/TRL reward function runs: for each item ``verify(parse("\\boxed{gold}"),
  parse(completion))`` in the calling process, math-verify's own ``signal.alarm`` timeouts on (so it
  must run on the main thread, and a stuck C-level sympy call would still hang it).
- ours: ``MathVerifier(workers=W)``, one batched call, hard per-item timeouts from the parent.
- also reported: the same sequential loop with each distinct gold parsed once (what reference caching
  alone buys, without processes).

Each method runs ``--repeats`` times, interleaved, and the fastest run counts (the machine is shared).
Every run starts cold: the sequential loops each run in a fresh Python process (sympy's global cache
would otherwise carry over from the previous repeat) and MathVerifier gets fresh workers.
Worker start-up is timed separately. Both methods must agree on every score. CPU seconds are recorded
too (the calling process, plus the workers' from /proc): on a machine that other sessions keep busy,
Linux's autogroup scheduler gives each *session* one fair share, so the workers (in the caller's
session) split the share a sequential loop would get alone, and wall-clock ratios then understate the
pool; ``projected_idle_ratio`` is the sequential loop's CPU time over the busiest worker's CPU time plus
the caller's, i.e. the ratio on an otherwise idle machine with one core per worker.
Writes bench/results/verifier.json.

With ``--hostile``: a mixed batch of 40 pathological answers (power towers, thousands of nested
brackets, factorials of towers) and 42 normal ones (MATH-500 golds, half of them perturbed), scored by
``MathVerifier(screen=True)`` (hostile answers rejected as ``too_complex`` before parsing) and by
``MathVerifier(screen=False)`` (the hard timeout alone, as before the screen), alternating; the normal
answers must score the same under both. Writes bench/results/verifier_hostile.json.

Run: .venv/bin/python bench/verifier.py [--workers 2] [--repeats 3] [--hostile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from math_verify import LatexExtractionConfig, parse, verify

from weakreward import MathVerifier

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "rlvr-weak-supervision" / "eval" / "non-think" / "math500.parquet"
FIXTURE = ROOT / "tests" / "fixtures" / "math500_golds.jsonl"


def load_golds() -> tuple[list[str], str]:
    if SHARED.exists():
        import pyarrow.parquet as pq

        rows = pq.read_table(SHARED, columns=["reward_model"]).to_pylist()
        return [r["reward_model"]["ground_truth"] for r in rows], str(SHARED.relative_to(ROOT.parent))
    return [json.loads(line)["gold"] for line in FIXTURE.read_text().splitlines()], str(FIXTURE.relative_to(ROOT))


def perturb(gold: str) -> str | None:
    for k, ch in enumerate(gold):
        if ch.isdigit():
            return gold[:k] + str((int(ch) + 1) % 10) + gold[k + 1 :]
    return None


def sequential(golds: list[str], completions: list[str], cache_golds: bool) -> list[float]:
    cache: dict[str, list] = {}
    scores = []
    for gold, completion in zip(golds, completions):
        if cache_golds and gold in cache:
            g = cache[gold]
        else:
            g = parse("\\boxed{" + gold + "}", extraction_config=[LatexExtractionConfig()])
            cache[gold] = g
        scores.append(1.0 if verify(g, parse(completion)) else 0.0)
    return scores


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _autogroup() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"


def make_items() -> tuple[list[str], list[str], list[float], str]:
    """(references, completions, intended scores, data source)."""
    golds, source = load_golds()
    refs, completions, correct = [], [], []
    for g in golds:
        refs.append(g)
        completions.append("\\boxed{" + g + "}")
        correct.append(1.0)
    for g in golds:
        p = perturb(g)
        if p is not None:
            refs.append(g)
            completions.append("\\boxed{" + p + "}")
            correct.append(0.0)
    return refs, completions, correct, source


def run_child(name: str) -> None:
    """One cold sequential run in this fresh process; prints its timing and scores as JSON."""
    refs, completions, _, _ = make_items()
    # Compile math-verify's regexes first (MathVerifier's workers do this while starting).
    sequential(["1"], ["\\boxed{1}"], cache_golds=False)
    cpu_start = time.process_time()
    start = time.perf_counter()
    scores = sequential(refs, completions, cache_golds=name == "sequential_gold_cache")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu_start, "scores": scores}))


def hostile_answers() -> list[str]:
    """40 answers that each cost an unscreened math-verify worker a full timeout (or nearly)."""
    towers = [f"\\boxed{{{b}^{{{b}^{{{b}^{{{b}}}}}}}}}" for b in range(3, 10)]  # b^(b^(b^b))
    towers += [f"\\boxed{{{k}^{{{k}^{{{k}}}}}}}" for k in (8, 9, 10, 11, 12)]  # k^(k^k)
    python = ["2**2**2**2**2**2", "3**3**3**3", "9**9**9", "The answer is 10**10**10"]
    factorials = [r"\boxed{(9^{9^{9}})!}", r"\boxed{100000000!}"] + [f"\\boxed{{(10^{{{k}}})!}}" for k in (7, 8, 9, 10)]
    nested = [r"\boxed{" + "(" * n + "1" + ")" * n + "}" for n in (500, 1000, 2000, 4000)]
    nested += [r"\boxed{" + "{" * n + "1" + "}" * n + "}" for n in (1000, 2000)]
    nested += ["\\boxed{" + "\\frac{" * n + "1" + "}{2}" * n + "}" for n in (500, 1000)]
    nested += ["\\boxed{" + "\\sqrt{" * n + "2" + "}" * n + "}" for n in (1000, 2000)]
    inline = [
        r"The answer is $9^{9^{9^{9^{9}}}}$",
        r"so $x = 10^{10^{10^{10}}}$",
        r"\boxed{x^{10^{10^{10}}}}",
        r"\boxed{2^{10^{10}} + 1}",
        r"\boxed{\frac{(10^{10})!}{2}}",
        r"\boxed{\sqrt{9^{9^{9}}}}",
        r"The answer is $(10^{10})! - 1$",
        r"\boxed{3^{3^{3^{3^{3}}}}}",
    ]
    answers = towers + python + factorials + nested + inline
    assert len(answers) == 40, len(answers)
    return answers


def run_hostile(args: argparse.Namespace) -> None:
    golds, source = load_golds()
    normal_refs = golds[:42]
    normal = [f"\\boxed{{{g if k % 2 == 0 else (perturb(g) or g + '1')}}}" for k, g in enumerate(normal_refs)]
    bad = hostile_answers()
    # Interleaved, so hostile answers are spread over the chunks as a degenerating policy's would be.
    completions, refs, is_normal = [], [], []
    for k in range(max(len(bad), len(normal))):
        if k < len(normal):
            completions.append(normal[k])
            refs.append(normal_refs[k])
            is_normal.append(True)
        if k < len(bad):
            completions.append(bad[k])
            refs.append("1")
            is_normal.append(False)
    verifiers = {
        "screened": MathVerifier(workers=args.workers, screen=True),
        "timeout_only": MathVerifier(workers=args.workers, screen=False),
    }
    times: dict[str, list[float]] = {k: [] for k in verifiers}
    reasons: dict[str, list[str]] = {}
    scores: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name, verifier in verifiers.items():
            verifier.close()
            verifier.start()
            start = time.perf_counter()
            result = verifier.score(completions, references=refs)
            times[name].append(time.perf_counter() - start)
            reasons[name] = list(result.details["reason"])
            scores[name] = result.scores.tolist()
            verifier.close()
    load_after = os.getloadavg()
    normal_scores = {k: [s for s, ok in zip(v, is_normal) if ok] for k, v in scores.items()}
    result = {
        "benchmark": "MathVerifier on a mixed batch: 40 pathological + 42 normal answers, screened vs timeout only",
        "source": source,
        "items": len(completions),
        "hostile_items": len(bad),
        "normal_items": len(normal),
        "workers": args.workers,
        "timeout_s": verifiers["screened"].timeout,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "seconds_best": {k: round(min(v), 3) for k, v in times.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratio_timeout_only_vs_screened": round(min(times["timeout_only"]) / min(times["screened"]), 2),
        "hostile_reasons": {
            k: {r: sum(1 for x, ok in zip(v, is_normal) if not ok and x == r) for r in sorted(set(v))}
            for k, v in reasons.items()
        },
        "normal_scores_equal": normal_scores["screened"] == normal_scores["timeout_only"],
        "normal_correct_fraction": sum(normal_scores["screened"]) / len(normal),
    }
    out = args.out if args.out != DEFAULT_OUT else ROOT / "bench" / "results" / "verifier_hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


DEFAULT_OUT = ROOT / "bench" / "results" / "verifier.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hostile", action="store_true", help="the mixed hostile/normal batch instead")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", choices=["sequential", "sequential_gold_cache"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    if args.hostile:
        run_hostile(args)
        return

    refs, completions, correct, source = make_items()
    n = len(completions)
    start = time.perf_counter()
    verifier = MathVerifier(workers=args.workers, timeout=10.0).start()
    startup_s = time.perf_counter() - start

    times: dict[str, list[float]] = {"sequential": [], "sequential_gold_cache": [], "math_verifier": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    busiest_worker_cpu: list[float] = []
    outputs: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name in times:
            if name != "math_verifier":
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", name], check=True, capture_output=True, text=True
                )
                run = json.loads(proc.stdout)
                times[name].append(run["seconds"])
                cpu[name].append(run["cpu_seconds"])
                outputs[name] = run["scores"]
                continue
            verifier.close()
            verifier.start()
            pids = [w.process.pid for w in verifier._pool.workers]
            worker_cpu = [_cpu_seconds(p) for p in pids]
            cpu_start = time.process_time()
            start = time.perf_counter()
            scores = verifier.score(completions, references=refs).scores.tolist()
            times[name].append(time.perf_counter() - start)
            own = time.process_time() - cpu_start
            used = [_cpu_seconds(p) - c for p, c in zip(pids, worker_cpu)]
            busiest_worker_cpu.append(max(used) + own)
            cpu[name].append(own + sum(used))
            outputs[name] = scores
    load_after = os.getloadavg()
    verifier.close()

    best = {k: min(v) for k, v in times.items()}
    rate = {k: n / v for k, v in best.items()}
    result = {
        "benchmark": "MathVerifier vs sequential math-verify on MATH-500 golds (correct + perturbed)",
        "source": source,
        "items": n,
        "distinct_references": len(set(refs)),
        "distinct_items": len(set(zip(refs, completions))),
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "worker_startup_s": round(startup_s, 3),
        "seconds_best": {k: round(v, 3) for k, v in best.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "items_per_s": {k: round(v, 1) for k, v in rate.items()},
        "cpu_seconds_min": {k: round(min(v), 3) for k, v in cpu.items()},
        "sched_autogroup_enabled": _autogroup(),
        "projected_idle_ratio": round(min(cpu["sequential"]) / min(busiest_worker_cpu), 3),
        "ratio_math_verifier_vs_sequential": round(rate["math_verifier"] / rate["sequential"], 3),
        "ratio_math_verifier_vs_sequential_gold_cache": round(rate["math_verifier"] / rate["sequential_gold_cache"], 3),
        "accuracy_vs_intended": {k: sum(a == b for a, b in zip(v, correct)) / n for k, v in outputs.items()},
        "disagreements_with_sequential": sum(a != b for a, b in zip(outputs["math_verifier"], outputs["sequential"])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
