"""Judging throughput on one core: lethe-judge (the default) against refusal-strings, measured in
the same run on the same responses. Goal (issue 17): lethe-judge >= 2,000 judgements per second.

    python bench/bench_judges.py [--count 4000] [--repeat 3] [--devset /path/to/judge-devset]

Responses: by default the bundled hand-labelled set (evals/data/judge_handset_v1.jsonl: short
refusals, answers and degenerate output), half of them stretched into long answers by joining
three to six answers of the same kind (seeded), so lengths run from one word to a few thousand
characters; with --devset, the human-labelled dev set's real responses instead (median about 500
characters). The process is pinned to one CPU; each figure is the best of --repeat passes over
all responses, the two judges taking turns so a busy machine slows both alike. Rates are given
per second of wall time and per second of CPU time of this process (time.process_time): on a
shared machine the second is what one core would do uncontended.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.judge_base import DATA_DIR, JudgeInput  # noqa: E402
from evals.judges import judge_from_spec  # noqa: E402


def corpus(count: int, devset: str | None, seed: int = 0) -> list[JudgeInput]:
    rng = random.Random(seed)
    if devset:
        from evals.judge_devset import load_devset

        items = [JudgeInput(row.prompt, row.response, row.expected) for row in load_devset(devset)]
    else:
        with (DATA_DIR / "judge_handset_v1.jsonl").open(encoding="utf-8") as handle:
            items = [JudgeInput(row["prompt"], row["response"], row["expected"]) for row in map(json.loads, handle)]
    if not devset:
        by_kind = {}
        for item in items:
            by_kind.setdefault(item.expected, []).append(item)
        long = []
        for _ in range(len(items)):
            base = rng.choice(items)
            parts = rng.sample(by_kind[base.expected], rng.randint(3, 6))
            long.append(JudgeInput(base.prompt, "\n\n".join(part.response for part in parts), base.expected))
        items += long
    return [items[i % len(items)] for i in rng.sample(range(max(count, len(items))), count)] if count < len(items) else [items[i % len(items)] for i in range(count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devset", default=None)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    items = corpus(args.count, args.devset)
    judges = {name: judge_from_spec(name) for name in ("lethe-judge", "refusal-strings")}
    for judge in judges.values():
        judge.judge(items[:200])  # warm caches and lazy compilation
    best = {name: float("inf") for name in judges}
    best_cpu = {name: float("inf") for name in judges}
    for _ in range(args.repeat):
        for name, judge in judges.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            judge.judge(items)
            best[name] = min(best[name], time.perf_counter() - start)
            best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
    rates = {name: len(items) / seconds for name, seconds in best.items()}
    cpu_rates = {name: len(items) / seconds for name, seconds in best_cpu.items()}
    lengths = [len(item.response) for item in items]
    print(
        f"{len(items)} responses ({'dev set' if args.devset else 'hand-labelled set, half stretched'}), "
        f"median {statistics.median(lengths):.0f} characters, mean {statistics.mean(lengths):.0f}; one core, best of {args.repeat}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, rate in rates.items():
        print(f"{name:16} {rate:10,.0f} judgements/s of wall time ({1e6 / rate:7.1f} us each), {cpu_rates[name]:10,.0f} per CPU second ({1e6 / cpu_rates[name]:7.1f} us each)")
    ratio = rates["lethe-judge"] / rates["refusal-strings"]
    cpu_ratio = cpu_rates["lethe-judge"] / cpu_rates["refusal-strings"]
    print(
        f"lethe-judge / refusal-strings: {ratio:.4f}x wall, {cpu_ratio:.4f}x CPU; goal lethe-judge >= 2,000/s: "
        f"{'met' if rates['lethe-judge'] >= 2000 else 'NOT met'} in wall time, "
        f"{'met' if cpu_rates['lethe-judge'] >= 2000 else 'NOT met'} per CPU second"
    )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "judges.json").write_text(
        json.dumps({"count": len(items), "rates": rates, "cpu_rates": cpu_rates, "ratio": ratio, "devset": bool(args.devset)}, indent=2, sort_keys=True)
    )


if __name__ == "__main__":
    main()
