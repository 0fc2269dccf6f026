"""The per-case explorer at 10,000 cases per arm against 100: p50 of filtered pages (web and API)
and of an export, each size an evaluation in the same fresh PostgreSQL database, timed in rounds
that alternate between the two sizes (a shared host's drift is charged to both).

    python bench/bench_explorer.py [--repeats 30]

Prints, per request, p50 at each size and the ratio big/small. Goal (issue 18): a filtered page at
10,000 cases within 3x of the same page at 100 (the export reads every matching row, so it grows
with them: reported, not held to the goal).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import django_setup, percentile, write_result  # noqa: E402

GOAL_RATIO = 3.0
SIZES = (100, 10_000)
GROWS = " *"  # reads every matching row: judged on nothing, reported


def build():
    from django.db import transaction

    from population import Population, _finished_evaluation, bench_cases
    from evals.services import suite_create, suite_version_create
    from versions import services

    user = services.user_create(username="bench", password="bench-password-not-secret")
    project = services.project_create(slug="bench", name="bench", creator=user)
    population = Population(scale=1.0, project=project, user=user)
    model = services.model_create(project=project, name="m", actor=user)
    a = services.checkpoint_register(model=model, kind="reference", external_ref="org/a", actor=user)
    b = services.checkpoint_register(model=model, kind="reference", external_ref="org/b", actor=user)
    evaluations = {}
    for size in SIZES:
        suite = suite_create(project=project, name=f"explorer-{size}", actor=user)
        version = suite_version_create(suite=suite, cases=bench_cases(size), actor=user)
        with transaction.atomic():
            evaluations[size] = _finished_evaluation(population=population, suite_version=version, checkpoint_a=a, checkpoint_b=b, unsafe_a=3, unsafe_b=7).pk
    return user, evaluations


def requests(evaluation_id):
    web = f"/p/bench/evaluations/{evaluation_id}/cases/"
    api = f"/api/v1/projects/bench/evaluations/{evaluation_id}/results/"
    return [
        ("page: still succeeds on B", f"{web}?only=still_succeeds"),
        ("page: still succeeds on B, page 3", f"{web}?only=still_succeeds&page=3"),
        ("page: category + family", f"{web}?category=cyber&family=template"),
        ("page: search 'phishing'", f"{web}?q=phishing"),
        ("page: every case, page 3", f"{web}?page=3"),
        ("API: regressed-or-fixed outcome filter", f"{api}?outcome_a=attack_success&outcome_b=refused"),
        ("API: search + expected", f"{api}?q=lock&expected=refuse"),
        (f"export CSV: fixed{GROWS}", f"{web}export/?only=fixed&format=csv"),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    django_setup(database="bench_explorer")
    from django.core.management import call_command
    from django.test import Client

    call_command("collectstatic", interactive=False, verbosity=0)  # pages name static files through the manifest

    user, evaluations = build()
    client = Client()
    client.force_login(user)
    timings = {(size, name): [] for size in SIZES for name, _ in requests(0)}

    def fetch(url):
        start = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        assert response.status_code == 200, (url, response.status_code)
        return (time.perf_counter() - start) * 1000

    for size in SIZES:  # warm up
        for _, url in requests(evaluations[size]):
            fetch(url)
    for round_number in range(args.repeats):
        order = SIZES if round_number % 2 == 0 else SIZES[::-1]
        for size in order:
            for name, url in requests(evaluations[size]):
                timings[(size, name)].append(fetch(url))

    small, big = SIZES
    rows, ok = [], True
    print(f"{'request':45} {'p50 @100':>10} {'p50 @10k':>10} {'ratio':>7}")
    for name, _ in requests(0):
        p_small, p_big = percentile(timings[(small, name)], 0.5), percentile(timings[(big, name)], 0.5)
        ratio = p_big / p_small
        if not name.endswith(GROWS) and ratio > GOAL_RATIO:
            ok = False
        rows.append({"request": name, "p50_ms_small": round(p_small, 2), "p50_ms_big": round(p_big, 2), "ratio": round(ratio, 2)})
        print(f"{name:45} {p_small:9.1f}ms {p_big:9.1f}ms {ratio:6.2f}x")
    print(f"goal: every filtered page within {GOAL_RATIO}x at {big:,} cases vs {small:,}: {'met' if ok else 'NOT met'}")
    write_result("explorer", {"sizes": SIZES, "repeats": args.repeats, "rows": rows, "goal_ratio": GOAL_RATIO, "goal_met": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
