"""MLflow's half of bench_mlflow.py. Runs in bench/.venv-mlflow (MLflow is not a dependency of
Lethe), through ``MlflowClient`` against a PostgreSQL database: in-process, or with
``--tracking-uri`` through an MLflow tracking server on that database. It prints
{"version"}, then runs one phase per line it reads on stdin (an operation's name, or
"analyze") and answers each with one JSON line ({"count", "seconds"}).

    echo "register model version" | bench/.venv-mlflow/bin/python bench/mlflow_side.py \
        --db postgresql+psycopg2://postgres@127.0.0.1:5432/bench_mlflow --count 5000
"""

import argparse
import json
import logging
import os
import sys
import time
import warnings

TAGGED_EVERY = 10


def timed(count, action):
    began = time.perf_counter()
    for i in range(count):
        action(i)
    return {"count": count, "seconds": time.perf_counter() - began}


# Answers go to the real stdout; anything MLflow or its libraries print goes to stderr.
PROTOCOL = sys.stdout
sys.stdout = sys.stderr


def answer(data):
    PROTOCOL.write(json.dumps(data) + "\n")
    PROTOCOL.flush()


def analyze(url):
    """Fresh planner statistics after the bulk of writes, as on a settled database (bench_mlflow.py
    does the same on Lethe's side): otherwise plans depend on when autovacuum happens to run."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--tracking-uri", help="an MLflow tracking server's URL; default: the database itself, in-process")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--alias-ops", type=int, default=1000)
    parser.add_argument("--read-ops", type=int, default=200)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    from mlflow import MlflowClient

    uri = args.tracking_uri or args.db
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    model, prompt = "bench-model", "bench-prompt"
    client.create_registered_model(model)

    def register_model_version(i):
        tags = {"validated": "true"} if i % TAGGED_EVERY == 0 else None
        client.create_model_version(model, source=f"s3://bench/checkpoints/{i}", tags=tags, await_creation_for=0)

    def register_prompt_version(i):
        client.register_prompt(prompt, f"You are the bench assistant (revision {i}). Answer {{{{question}}}} about {{{{topic}}}}.", commit_message=f"revision {i}")

    def list_versions(i):
        page = client.search_model_versions(f"name='{model}'", max_results=args.page)
        assert len(page) == args.page, len(page)

    def search_by_tag(i):
        page = client.search_model_versions(f"name='{model}' and tags.validated='true'", max_results=args.page)
        assert len(page) == min(args.page, args.count // TAGGED_EVERY), len(page)

    phases = {
        "register model version": (args.count, register_model_version),
        "register prompt version": (args.count, register_prompt_version),
        "set alias (model)": (args.alias_ops, lambda i: client.set_registered_model_alias(model, "production", str(i % args.count + 1))),
        "set alias (prompt)": (args.alias_ops, lambda i: client.set_prompt_alias(prompt, "production", i % args.count + 1)),
        "resolve alias (model)": (args.alias_ops, lambda i: client.get_model_version_by_alias(model, "production")),
        "resolve alias (prompt)": (args.alias_ops, lambda i: client.get_prompt_version_by_alias(prompt, "production")),
        "list versions of one model": (args.read_ops, list_versions),
        "search versions by tag": (args.read_ops, search_by_tag),
    }
    import mlflow

    answer({"version": mlflow.__version__})
    # One command per line from bench_mlflow.py, which runs Lethe's side of each phase right
    # after MLflow's: a shared host's speed drifts over a run, and phase by phase both sides see
    # the same moment.
    for line in sys.stdin:
        command = line.strip()
        if command == "analyze":
            analyze(args.db)
            answer({"analyzed": True})
        elif command in phases:
            count, action = phases[command]
            answer(timed(count, action))
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
