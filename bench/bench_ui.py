"""The first chart page in a fresh browser: how long until every chart is drawn, served as the
demo serves it now (DEBUG off; WhiteNoise serving collectstatic's hashed, gzipped files with
ten-year immutable cache headers; plotly.js's basic bundle) against a baseline measured in the
same run: the same pages, data and database served by Lethe as of ``--baseline-ref`` (the last
commit before issue 18, extracted with git archive) the way the demo served them then
(runserver with DEBUG on: the full plotly.js sent whole, uncompressed, with no cache headers).

    python bench/bench_ui.py [--rounds 6] [--baseline-ref 0ce6fa7]

Each round opens a fresh Chromium context (empty cache) per server, signs in, then times the
first navigation to each chart page until plotly has drawn every chart on it, and a second visit
of the same page (warm cache). Rounds alternate which server goes first, so a shared host's
drift falls on both. Both servers run on 127.0.0.1 as processes of their own, on the benchmark
population (bench/population.py, scale 0.01) in PostgreSQL.

Goal (issue 18): the heaviest chart page loads cold in under 1 s on loopback.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import OUT, ROOT, django_setup, server_start, server_wait, write_result  # noqa: E402

GOAL_COLD_S = 1.0
CHROMIUM = "/usr/bin/chromium"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(*, source, debug, static_root, log_path):
    """runserver from the code in ``source`` (this checkout, or the baseline's), on a free port."""
    port = _free_port()
    env = {**os.environ, "LETHE_DEBUG": "1" if debug else "0", "LETHE_STATIC_ROOT": str(static_root), "PYTHONPATH": str(source)}
    log = open(log_path, "w")
    process = server_start([sys.executable, str(source / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        server_wait(f"{base}/login/", process, f"the server (log: {log_path})")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    return process, base


CHARTS_DRAWN = """() => { const charts = [...document.querySelectorAll('[data-figure]')];
    return charts.length > 0 && charts.every(div => div.classList.contains('js-plotly-plot')); }"""


# Milliseconds from the start of the navigation: the HTML received, plotly.js received (and how
# long its transfer took), DOMContentLoaded done (deferred scripts ran), every chart drawn.
PHASES = """() => { const nav = performance.getEntriesByType('navigation')[0];
    const plotly = performance.getEntriesByType('resource').find(entry => entry.name.includes('plotly'));
    return {html: nav.responseEnd, plotly_received: plotly ? plotly.responseEnd : null, plotly_transfer: plotly ? plotly.responseEnd - plotly.requestStart : null,
            scripts_ran: nav.domContentLoadedEventEnd, drawn: performance.now()}; }"""


def measure(browser, base, path):
    """(cold seconds, warm seconds, plotly.js response headers): a fresh context (empty cache)
    signs in, opens ``path`` until every chart is drawn, then opens it again."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{base}/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "bench-password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        plotly = {}
        page.on("response", lambda response: "plotly" in response.url and plotly.setdefault("headers", response.headers))
        timings, phases = [], None
        for _ in range(2):
            began = time.perf_counter()
            page.goto(f"{base}{path}")
            page.wait_for_function(CHARTS_DRAWN, timeout=60_000)
            timings.append(time.perf_counter() - began)
            phases = phases or page.evaluate(PHASES)
        return timings[0], timings[1], plotly.get("headers", {}), phases
    finally:
        context.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--baseline-ref", default="0ce6fa7", help="the commit whose serving is the baseline (before issue 18)")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="lethe-bench-ui-"))
    os.environ["LETHE_STATIC_ROOT"] = str(scratch / "static")
    django_setup(database="bench_ui", var_dir=scratch / "var")
    from django.core.management import call_command

    from population import populate

    print("population (scale 0.01) in PostgreSQL ...", flush=True)
    population = populate(scale=0.01, log=lambda line: print(line, flush=True))
    call_command("collectstatic", interactive=False, verbosity=0)
    baseline = scratch / "baseline"
    baseline.mkdir()
    archive = subprocess.run(["git", "archive", args.baseline_ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
    pages = {
        "safety over time (6 charts)": f"/p/bench/models/{population.deep_model}/safety/",
        "evaluation report (4 charts)": f"/p/bench/evaluations/{population.evaluation_id}/",
    }
    servers = {}
    try:
        servers["baseline"] = start_server(source=baseline, debug=True, static_root=scratch / "static", log_path=OUT / "ui-baseline-server.log")
        servers["lethe"] = start_server(source=ROOT, debug=False, static_root=scratch / "static", log_path=OUT / "ui-lethe-server.log")
        from playwright.sync_api import sync_playwright

        samples = {(server, name): {"cold": [], "warm": [], "phases": []} for server in servers for name in pages}
        headers = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for round_number in range(args.rounds):
                order = ["baseline", "lethe"] if round_number % 2 == 0 else ["lethe", "baseline"]
                for server in order:
                    for name, path in pages.items():
                        cold, warm, plotly_headers, phases = measure(browser, servers[server][1], path)
                        samples[(server, name)]["cold"].append(cold)
                        samples[(server, name)]["warm"].append(warm)
                        samples[(server, name)]["phases"].append(phases)
                        headers[server] = plotly_headers
            browser.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=20)

    rows = []
    for name in pages:
        base_cold = statistics.median(samples[("baseline", name)]["cold"])
        base_warm = statistics.median(samples[("baseline", name)]["warm"])
        cold = statistics.median(samples[("lethe", name)]["cold"])
        warm = statistics.median(samples[("lethe", name)]["warm"])
        rows.append(
            {
                "page": name,
                "baseline_cold_s": base_cold,
                "baseline_warm_s": base_warm,
                "cold_s": cold,
                "warm_s": warm,
                "cold_ratio": base_cold / cold,
                "warm_ratio": base_warm / warm,
                "meets_goal": cold < GOAL_COLD_S,
            }
        )
    for server, plotly_headers in headers.items():
        print(
            f"plotly.js from {server}: content-encoding {plotly_headers.get('content-encoding', 'none')!r}, "
            f"content-length {plotly_headers.get('content-length', '?')}, cache-control {plotly_headers.get('cache-control', 'none')!r}"
        )
    print(f"median of {args.rounds} rounds; each cold load in a fresh Chromium context, until every chart is drawn")
    for (server, name), values in samples.items():
        phase = {key: statistics.median(p[key] for p in values["phases"] if p[key] is not None) for key in values["phases"][0]}
        print(f"{server} | {name} | cold load phases (median ms from navigation start): " + ", ".join(f"{k} {v:.0f}" for k, v in phase.items()))
    for row in rows:
        print(
            f"{row['page']}: cold {row['cold_s']:.2f} s against {row['baseline_cold_s']:.2f} s baseline = ratio {row['cold_ratio']:.1f}x; "
            f"warm {row['warm_s']:.2f} s against {row['baseline_warm_s']:.2f} s = ratio {row['warm_ratio']:.1f}x; "
            f"goal cold < {GOAL_COLD_S:.0f} s {'met' if row['meets_goal'] else 'missed'}"
        )
    write_result(
        "ui",
        {
            "rounds": args.rounds,
            "baseline_ref": args.baseline_ref,
            "rows": rows,
            "plotly_headers": headers,
            "samples": {f"{server} | {name}": values for (server, name), values in samples.items()},
        },
    )


if __name__ == "__main__":
    main()
