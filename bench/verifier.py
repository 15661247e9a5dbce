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
Worker start-up is timed separately. Both methods must agree on every score.
Writes bench/results/verifier.json.

Run: .venv/bin/python bench/verifier.py [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "verifier.json")
    args = parser.parse_args()

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
    n = len(completions)

    # Warm imports and math-verify's regex caches for the in-process loop.
    sequential(refs[:5], completions[:5], cache_golds=False)
    start = time.perf_counter()
    verifier = MathVerifier(workers=args.workers, timeout=10.0).start()
    startup_s = time.perf_counter() - start
    verifier.score(completions[:5], references=refs[:5])

    times: dict[str, list[float]] = {"sequential": [], "sequential_gold_cache": [], "math_verifier": []}
    outputs: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name in times:
            # Fresh workers each repeat: the reference cache must not carry over between runs.
            if name == "math_verifier":
                verifier.close()
                verifier.start()
            start = time.perf_counter()
            if name == "math_verifier":
                scores = verifier.score(completions, references=refs).scores.tolist()
            else:
                scores = sequential(refs, completions, cache_golds=name == "sequential_gold_cache")
            times[name].append(time.perf_counter() - start)
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
