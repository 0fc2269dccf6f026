"""The benchmarks' own PostgreSQL databases and Django setup.

Each benchmark gets a fresh database on 127.0.0.1 (``bench_lethe``; MLflow's side uses
``bench_mlflow``) and a scratch LETHE_VAR_DIR, so nothing touches a developer's data.
"""
import os
import sys
import tempfile
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
