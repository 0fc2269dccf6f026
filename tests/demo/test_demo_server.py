"""The web server the demo starts: DEBUG off, Lethe's own 404 page, static files from the
collected STATIC_ROOT with compression and far-future cache headers. Started exactly as the demo
command starts it, as a process of its own on loopback."""

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from demo.management.commands.demo import demo_server_command

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demo_server(tmp_path, _collected_static):
    # A clean environment (SQLite in its own folder), with the static files this session collected.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_") and k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    environ.update({"LETHE_VAR_DIR": str(tmp_path / "var"), "LETHE_STATIC_ROOT": str(_collected_static)})
    port = _free_port()
    argv, env = demo_server_command(host="127.0.0.1", port=port, environ=environ)
    log = tmp_path / "server.log"
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(f"{base}/login/", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the demo server did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield {"base": base, "env": env}
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_demo_server_runs_with_debug_off_and_answers_an_unknown_url_with_our_404_page(demo_server):
    # given the server as the demo starts it
    assert demo_server["env"]["LETHE_DEBUG"] == "0"

    # when a visitor opens a URL that matches nothing
    response = requests.get(f"{demo_server['base']}/p/demo/no-such-page/", timeout=10)

    # then Lethe's page answers, not Django's debug page with its list of URL patterns
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text
    assert "URLconf" not in response.text and "api/v1/" not in response.text and "DEBUG = True" not in response.text


def test_the_demo_server_serves_hashed_static_files_gzipped_and_cached_for_years(demo_server):
    # given the sign-in page, which names its stylesheet by a hashed name
    page = requests.get(f"{demo_server['base']}/login/", timeout=10).text
    stylesheet = re.search(r'href="(/static/css/lethe\.[0-9a-f]{12}\.css)"', page).group(1)

    # when the browser fetches it, accepting gzip
    response = requests.get(f"{demo_server['base']}{stylesheet}", headers={"Accept-Encoding": "gzip"}, timeout=10)

    # then it comes compressed, with a cache lifetime of ten years and no revalidation
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert "header.site" in response.text
