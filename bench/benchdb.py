"""The benchmarks' own PostgreSQL databases and Django setup.

Each benchmark gets a fresh database on 127.0.0.1 (``bench_lethe``; MLflow's side uses
``bench_mlflow``) and a scratch LETHE_VAR_DIR, so nothing touches a developer's data.
"""

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PG_SERVER = os.environ.get("LETHE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def recreate_database(name):
    """Drop and create ``name`` on the benchmark server (autocommit: CREATE DATABASE needs it)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


def django_setup(*, database="bench_lethe", fresh=True, var_dir=None):
    """Point Django at the benchmark database (recreated and migrated when ``fresh``)."""
    url = recreate_database(database) if fresh else f"{PG_SERVER}/{database}"
    os.environ["DATABASE_URL"] = url
    os.environ["LETHE_VAR_DIR"] = str(var_dir or Path(tempfile.mkdtemp(prefix="lethe-bench-var-")))
    # Persistent connections, as a deployment runs (docs/deploy.md); 0 would time a TCP connect per request.
    os.environ.setdefault("LETHE_DB_CONN_MAX_AGE", "600")
    os.environ["LETHE_DEBUG"] = "0"  # DEBUG keeps every query in memory and adds the browsable renderer
    os.environ.setdefault("LETHE_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    return url


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def write_result(name, data):
    import json

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


# Every server a benchmark starts, stopped when the script ends in any way but SIGKILL: a failed
# run used to leave gunicorn and MLflow servers holding the cores the next run measures on.
_STARTED: list[subprocess.Popen] = []


def server_start(command, **popen_kwargs) -> subprocess.Popen:
    process = subprocess.Popen(command, **popen_kwargs)
    _STARTED.append(process)
    return process


def server_stop(process) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _stop_started():
    for process in reversed(_STARTED):
        server_stop(process)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # so that atexit stops the servers


atexit.register(_stop_started)
if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def server_wait(url, process, what, *, timeout=180.0, headers=None):
    """Until ``url`` answers: a refused connection or a slow answer (a server still importing
    its code on a busy machine) is "not yet"; only the process exiting or the deadline is an error."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before it answered")
        try:
            requests.get(url, headers=headers, timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer at {url} within {timeout:g} s") from None
            time.sleep(0.3)
