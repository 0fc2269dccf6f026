"""Screenshots of the main pages, taken from the demo's data in a real browser.

    .venv/bin/python docs/screenshots.py [--out docs/screenshots]

Builds the demo (`demo.services.demo_run`: a tiny model, textual unlearning, an A/B evaluation,
a promotion and a rollback) in a scratch SQLite database and LETHE_VAR_DIR, then a second
unlearning round from the unlearned checkpoint (a `staging` branch label follows it) and its
evaluation, all through the services. It serves that on 127.0.0.1 as the demo serves it (DEBUG
off, collected static files) and takes PNGs with Playwright and /usr/bin/chromium (headless)
of: the evaluation report, the production label's page previewing a rollback, the case explorer
(the attacks that still succeed on B; skipped when that page does not exist), safety over time and the lineage graph. Nothing touches a developer's data.
Takes a few minutes on a CPU.
"""

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
MAX_BYTES = 300_000
VIEWPORT = {"width": 1280, "height": 900}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_data(out):
    """The demo, then a second unlearning round and its evaluation; returns what the pages need."""
    from demo.services import DEMO_PROJECT, DemoConfig, ab_evaluation, demo_run, unlearned_child
    from evals.services import starter_suite_install
    from versions import services

    outcome = demo_run(config=DemoConfig(max_new_tokens=16), out=out)
    project, user = outcome.project, outcome.unlearned.created_by
    second = unlearned_child(
        project=project,
        user=user,
        base=outcome.unlearned,
        method="npo",
        hyperparameters={"adapter": "lora", "lora_rank": 8, "max_steps": 12, "batch_size": 8, "learning_rate": 1e-3},
        seed=1,
        out=out,
    )
    evaluation = ab_evaluation(
        project=project, user=user, base=outcome.unlearned, unlearned=second, suite_version=starter_suite_install(project=project, actor=user), max_new_tokens=16, seed=0, out=out
    )
    services.label_move(name="staging", actor=user, checkpoint=second, reason=f"evaluation {evaluation.pk}: try it in staging")
    return {"slug": DEMO_PROJECT, "model": outcome.unlearned.model.name, "evaluation": outcome.evaluation.pk}


def serve(env, log_path):
    port = _free_port()
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 120
    while True:
        try:
            requests.get(f"{base}/login/", timeout=2)
            return process, base
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {log_path}") from None
            time.sleep(0.3)


CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-figure]')].every(div => div.classList.contains('js-plotly-plot'))"""


def shrink(path):
    """Keep a PNG under MAX_BYTES: a 256-colour palette first, then a smaller scale."""
    from PIL import Image

    if path.stat().st_size <= MAX_BYTES:
        return
    image = Image.open(path).convert("RGB")
    scale = 1.0
    while True:
        resized = image if scale == 1.0 else image.resize((int(image.width * scale), int(image.height * scale)), Image.LANCZOS)
        resized.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size <= MAX_BYTES or scale < 0.4:
            return
        scale *= 0.85


def take(base, data, out_dir, credentials):
    from playwright.sync_api import sync_playwright

    slug, model = data["slug"], data["model"]
    shots = [
        ("evaluation-report.png", f"/p/{slug}/evaluations/{data['evaluation']}/", None),
        # production is on the unlearned checkpoint; the preview of moving it back to #1, which the
        # evaluation measured less safe: the rollback warning and its acknowledgement.
        ("rollback-preview.png", f"/p/{slug}/models/{model}/labels/production/?target=1&evaluation={data['evaluation']}", None),
        ("case-explorer.png", f"/p/{slug}/evaluations/{data['evaluation']}/cases/?only=still_succeeds", None),
        ("safety-over-time.png", f"/p/{slug}/models/{model}/safety/", None),
        ("lineage-graph.png", f"/p/{slug}/models/{model}/", '[data-figure="lineage-figure"]'),
    ]
    taken = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_context(viewport=VIEWPORT, base_url=base).new_page()
        page.goto("/login/")
        page.fill("#id_username", credentials[0])
        page.fill("#id_password", credentials[1])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        for name, url, element in shots:
            response = page.goto(url)
            if response is None or response.status == 404:
                print(f"skipped {name}: {url} answered 404")
                continue
            page.wait_for_function(CHARTS_DRAWN, timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # responsive charts settle after the scrollbar appears
            path = out_dir / name
            if element:
                page.locator(element).screenshot(path=str(path))
            else:
                # The top of the page at 1280 px, up to two screens tall.
                height = min(page.evaluate("() => document.documentElement.scrollHeight"), 2 * VIEWPORT["height"])
                page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}, full_page=True)
            shrink(path)
            taken.append(path)
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB")
        browser.close()
    return taken


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    scratch = Path(tempfile.mkdtemp(prefix="lethe-screenshots-"))
    env = {
        **os.environ,
        "LETHE_VAR_DIR": str(scratch / "var"),
        "LETHE_STATIC_ROOT": str(scratch / "static"),
        "LETHE_DEBUG": "0",
        "LETHE_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)  # SQLite in the scratch LETHE_VAR_DIR
    (scratch / "var").mkdir()
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", interactive=False, verbosity=0)
    log = io.StringIO()
    print("building the demo's data (a few minutes on a CPU) ...", flush=True)
    data = build_data(log)
    from demo.services import DEMO_PASSWORD, DEMO_USERNAME

    process, base = serve(env, scratch / "server.log")
    try:
        take(base, data, out_dir, (DEMO_USERNAME, DEMO_PASSWORD))
    finally:
        process.terminate()
        process.wait(timeout=20)


if __name__ == "__main__":
    main()
