"""Lethe against MLflow's model and prompt registry, side by side, in one run, on the same
PostgreSQL server and machine: register 5,000 model versions and 5,000 prompt versions, move and
resolve aliases/labels, list one model's versions, search versions by tag. Each system through
its own Python client in-process: MLflow's ``MlflowClient`` (model registry and prompt registry,
SQLAlchemy store, no tracking server) in a subprocess using bench/.venv-mlflow; Lethe through its
services, and through its REST API with Django's test client.

    python bench/bench_mlflow.py [--count 5000]
    python bench/bench_mlflow.py --http --count 1000   # both as servers, over HTTP

With ``--http`` both systems run as servers on this machine, under gunicorn with the flags of
platform/Dockerfile (2 workers, 4 threads), and are driven over HTTP on 127.0.0.1 with
keep-alive: MLflow's tracking server (``mlflow server``) through ``MlflowClient``, Lethe
through ``requests`` with an API token. That is how teams run either, and it compares like with like
where the in-process comparison sets an HTTP API against a library call.

The MLflow environment is created on first use (``pip install mlflow psycopg2-binary``); MLflow
is not a dependency of Lethe. Goal (issue 9): Lethe >= 3x MLflow on every operation.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_artifacts import deploy_server_command, free_port  # noqa: E402
from benchdb import PG_SERVER, ROOT, django_setup, recreate_database, server_start, server_stop, server_wait, write_result  # noqa: E402

MLFLOW_VENV = ROOT / "bench" / ".venv-mlflow"
TAGGED_EVERY = 10
GOAL = 3.0
OPERATIONS = (
    "register model version",
    "register prompt version",
    "set alias (model)",
    "set alias (prompt)",
    "resolve alias (model)",
    "resolve alias (prompt)",
    "list versions of one model",
    "search versions by tag",
)


def mlflow_python():
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-mlflow (pip install mlflow psycopg2-binary)", flush=True)
        venv.create(MLFLOW_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mlflow", "psycopg2-binary"], check=True)
    return python


def warm_up(url):
    """Concurrent requests until every worker of a server has answered some (each loads its code
    on its first requests), then a pause for the processes that start with it to settle."""
    import requests
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: requests.get(url, timeout=30), range(200)))
    time.sleep(5)


class MlflowSide:
    """MLflow's half in its own environment (bench/mlflow_side.py), driven one phase at a time;
    with ``http``, through an MLflow tracking server started here on the same database."""

    def __init__(self, args, *, http=False):
        recreate_database("bench_mlflow")
        url = PG_SERVER.replace("postgres://", "postgresql+psycopg2://", 1) + "/bench_mlflow"
        python = mlflow_python()
        self.server = None
        tracking = []
        if http:
            port = free_port()
            scratch = tempfile.mkdtemp(prefix="bench-mlflow-server-")
            # Under gunicorn with Lethe's deployed flags (workers, threads): MLflow's default server,
            # uvicorn, stalled each request on a kept-alive connection by 40 ms on this host (a
            # health check took 44 ms with keep-alive, 2.7 ms on a fresh connection; Nagle's
            # algorithm against delayed ACKs), which would have measured that, not MLflow.
            deployed = deploy_server_command(port)
            workers, threads = (deployed[deployed.index(flag) + 1] for flag in ("--workers", "--threads"))
            self.server = server_start(
                [
                    str(python),
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    workers,
                    "--gunicorn-opts",
                    f"--threads {threads}",
                ],
                cwd=scratch,
                stdout=subprocess.DEVNULL,
                stderr=open(Path(scratch) / "server.log", "wb"),
                # Without its job runner (huey consumers for MLflow's own background jobs, which no
                # registry call uses): they take the 2 cores for seconds while they start.
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
            server_wait(f"http://127.0.0.1:{port}/health", self.server, f"mlflow server (log: {scratch}/server.log)")
            warm_up(f"http://127.0.0.1:{port}/health")
            tracking = ["--tracking-uri", f"http://127.0.0.1:{port}"]
        self.process = server_start(
            [
                str(python),
                str(ROOT / "bench" / "mlflow_side.py"),
                "--db",
                url,
                *tracking,
                "--count",
                str(args.count),
                "--alias-ops",
                str(args.alias_ops),
                "--read-ops",
                str(args.read_ops),
                "--page",
                str(args.page),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/tmp",
        )
        self.version = self._answer()["version"]

    def _answer(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"mlflow_side.py stopped (exit status {self.process.wait()}); its stderr is above")
        return json.loads(line)

    def run(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self):
        self.process.stdin.close()
        self.process.wait()
        if self.server is not None:
            server_stop(self.server)


class LetheServer:
    """Lethe as deployed (gunicorn with platform/Dockerfile's flags) on this benchmark's database,
    and a keep-alive HTTP client with the test client's calls (get, post, put), so that
    lethe_api_phases drives it unchanged."""

    def __init__(self, key):
        import requests
        from django.db import connections

        connections.close_all()  # the server's workers open their own
        port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="bench-lethe-server-")) / "server.log"
        self.server = server_start(deploy_server_command(port), cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))
        self.base = f"http://127.0.0.1:{port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        server_wait(f"{self.base}/api/v1/", self.server, f"Lethe's gunicorn (log: {self.log})")
        warm_up(f"{self.base}/api/v1/")

    def get(self, path):
        return self.session.get(self.base + path)

    def post(self, path, data, content_type):
        return self.session.post(self.base + path, data=json.dumps(data), headers={"Content-Type": content_type})

    def put(self, path, data, content_type):
        return self.session.put(self.base + path, data=json.dumps(data), headers={"Content-Type": content_type})

    def close(self):
        self.session.close()
        server_stop(self.server)


def analyze():
    """Fresh planner statistics after the bulk of writes, as on a settled database (mlflow_side.py
    does the same): otherwise plans depend on when autovacuum happens to run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(count, action):
    began = time.perf_counter()
    for i in range(count):
        action(i)
    return {"count": count, "seconds": time.perf_counter() - began}


def lethe_services_phases(args, project, user):
    """{operation: (count, action(i))} through Lethe's services, as bench/mlflow_side.py has them."""
    from versions import selectors, services

    model = services.model_create(project=project, name="svc-model", actor=user)
    prompt = services.prompt_create(project=project, name="svc-prompt", actor=user)
    checkpoints = {}
    versions = {}

    def register_model_version(i):
        # Tags in the same call, as MLflow's create_model_version(tags=...) takes them.
        checkpoint = services.checkpoint_register(
            model=model, kind="reference", external_ref=f"s3://bench/checkpoints/{i}", actor=user, tags=["validated"] if i % TAGGED_EVERY == 0 else ()
        )
        checkpoints[checkpoint.number] = checkpoint

    def register_prompt_version(i):
        version = services.prompt_version_commit(
            prompt=prompt, template=f"You are the bench assistant (revision {i}). Answer {{{{question}}}} about {{{{topic}}}}.", message=f"revision {i}", actor=user
        )
        versions[version.number] = version

    def list_versions(i):
        page = selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=model)[: args.page])
        assert len(page) == args.page

    def search_by_tag(i):
        page = selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=model, tag="validated")[: args.page])
        assert len(page) == min(args.page, args.count // TAGGED_EVERY)

    return {
        "register model version": (args.count, register_model_version),
        "register prompt version": (args.count, register_prompt_version),
        "set alias (model)": (args.alias_ops, lambda i: services.label_move(name="production", checkpoint=checkpoints[i % args.count + 1], actor=user)),
        "set alias (prompt)": (args.alias_ops, lambda i: services.label_move(name="production", prompt_version=versions[i % args.count + 1], actor=user)),
        "resolve alias (model)": (args.alias_ops, lambda i: selectors.label_resolve(project=project, ref="svc-model@production", kind="model")),
        "resolve alias (prompt)": (args.alias_ops, lambda i: selectors.label_resolve(project=project, ref="svc-prompt@production", kind="prompt")),
        "list versions of one model": (args.read_ops, list_versions),
        "search versions by tag": (args.read_ops, search_by_tag),
    }


def lethe_api_phases(args, client):
    """{operation: (count, action(i))} through Lethe's REST API with ``client`` (Django's test
    client in-process, or LetheServer over HTTP), and the REST floor: an authenticated request
    that only reads the project and the caller's role (token, project and role, JSON rendering),
    no registry work."""
    base = "/api/v1/projects/bench"

    def ok(response, status=(200, 201)):
        assert response.status_code in status, (response.status_code, response.content[:300])
        return response

    ok(client.post(f"{base}/models/", {"name": "api-model"}, content_type="application/json"))
    ok(client.post(f"{base}/prompts/", {"name": "api-prompt"}, content_type="application/json"))

    def register_model_version(i):
        ok(
            client.post(
                f"{base}/models/api-model/checkpoints/",
                {"kind": "reference", "external_ref": f"s3://bench/checkpoints/{i}", "tags": ["validated"] if i % TAGGED_EVERY == 0 else []},
                content_type="application/json",
            )
        )

    def list_versions(i):
        assert len(ok(client.get(f"{base}/models/api-model/checkpoints/?page_size={args.page}")).json()["results"]) == args.page

    def search_by_tag(i):
        found = ok(client.get(f"{base}/models/api-model/checkpoints/?tag=validated&page_size={args.page}")).json()["results"]
        assert len(found) == min(args.page, args.count // TAGGED_EVERY)

    return {
        "register model version": (args.count, register_model_version),
        "register prompt version": (
            args.count,
            lambda i: ok(
                client.post(
                    f"{base}/prompts/api-prompt/versions/",
                    {"template": f"You are the bench assistant (revision {i}). Answer {{{{question}}}} about {{{{topic}}}}.", "message": f"revision {i}"},
                    content_type="application/json",
                )
            ),
        ),
        "set alias (model)": (
            args.alias_ops,
            lambda i: ok(client.put(f"{base}/models/api-model/labels/production/", {"checkpoint": i % args.count + 1}, content_type="application/json")),
        ),
        "set alias (prompt)": (
            args.alias_ops,
            lambda i: ok(client.put(f"{base}/prompts/api-prompt/labels/production/", {"version": i % args.count + 1}, content_type="application/json")),
        ),
        "resolve alias (model)": (args.alias_ops, lambda i: ok(client.get(f"{base}/resolve/?ref=api-model@production&kind=model"))),
        "resolve alias (prompt)": (args.alias_ops, lambda i: ok(client.get(f"{base}/resolve/?ref=api-prompt@production&kind=prompt"))),
        "list versions of one model": (args.read_ops, list_versions),
        "search versions by tag": (args.read_ops, search_by_tag),
        "floor": (args.alias_ops, lambda i: ok(client.get(base + "/"))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000, help="model versions and prompt versions registered by each system")
    parser.add_argument("--alias-ops", type=int, default=1000)
    parser.add_argument("--read-ops", type=int, default=200)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--http", action="store_true", help="both systems as servers, driven over HTTP (see above)")
    args = parser.parse_args()

    django_setup(database="bench_lethe_vs_mlflow")
    from django.test import Client

    from versions import services

    user = services.user_create(username="bench", password="bench-password")
    project = services.project_create(slug="bench", name="Benchmark", creator=user)
    # An API token, as API clients and MLflow's client users authenticate (the browser's session
    # cookie costs a session and a user read per request).
    _, key = services.token_create(user=user, name="bench")
    if args.http:
        lethe_server = LetheServer(key)
        mlflow_side = MlflowSide(args, http=True)
        sides = {"api": lethe_api_phases(args, lethe_server)}
    else:
        lethe_server = None
        mlflow_side = MlflowSide(args)
        sides = {"services": lethe_services_phases(args, project, user), "api": lethe_api_phases(args, Client(HTTP_AUTHORIZATION=f"Bearer {key}"))}
    mlflow, lethe = {}, {"services": {}, "api": {}}
    # Phase by phase, MLflow's side and then Lethe's two, so all three see the same moment of a
    # shared host whose speed drifts over a run (it went 1.6x slower within one earlier run, and
    # timing one system wholly before the other charged that drift to the later one).
    for name in OPERATIONS:
        if name == OPERATIONS[2]:  # reads and label moves on a settled database: fresh planner statistics
            mlflow_side.run("analyze")
            analyze()
        print(f"{name} ...", flush=True)
        mlflow[name] = mlflow_side.run(name)
        for side, phases in sides.items():
            lethe[side][name] = timed(*phases[name])
    floor = timed(*sides["api"]["floor"])
    mlflow_side.close()
    if lethe_server is not None:
        lethe_server.close()
    rate = lambda r: r["count"] / r["seconds"]  # noqa: E731
    floor_ops_s = rate(floor)
    if args.http:
        report_http(args, mlflow_side.version, mlflow, lethe["api"], floor_ops_s)
    else:
        report_in_process(args, mlflow_side.version, mlflow, lethe, floor_ops_s)


def report_in_process(args, mlflow_version, mlflow, lethe, floor_ops_s):
    rate = lambda r: r["count"] / r["seconds"]  # noqa: E731
    rows = []
    print(f"\n{'operation':30s} {'MLflow ops/s':>13s} {'Lethe svc ops/s':>16s} {'ratio':>7s} {'Lethe API ops/s':>16s} {'ratio':>7s}")
    for name in OPERATIONS:
        m, s, a = rate(mlflow[name]), rate(lethe["services"][name]), rate(lethe["api"][name])
        rows.append(
            {
                "operation": name,
                "mlflow_ops_s": m,
                "lethe_services_ops_s": s,
                "lethe_api_ops_s": a,
                "ratio_services": s / m,
                "ratio_api": a / m,
                "meets_goal": min(s, a) / m >= GOAL,
            }
        )
        print(f"{name:30s} {m:13.1f} {s:16.1f} {s / m:6.1f}x {a:16.1f} {a / m:6.1f}x {'ok' if min(s, a) / m >= GOAL else 'MISSES GOAL'}")
    print(f"\nREST floor (authenticated read of the project, no registry work): {floor_ops_s:.1f} ops/s")
    write_result("mlflow", {"mlflow_version": mlflow_version, "count": args.count, "rows": rows, "api_floor_ops_s": floor_ops_s})


def report_http(args, mlflow_version, mlflow, lethe_api, floor_ops_s):
    rate = lambda r: r["count"] / r["seconds"]  # noqa: E731
    rows = []
    print(f"\n{'operation (both over HTTP)':30s} {'MLflow server ops/s':>20s} {'Lethe server ops/s':>19s} {'ratio':>7s}")
    for name in OPERATIONS:
        m, a = rate(mlflow[name]), rate(lethe_api[name])
        rows.append({"operation": name, "mlflow_ops_s": m, "lethe_ops_s": a, "ratio": a / m, "meets_goal": a / m >= GOAL})
        print(f"{name:30s} {m:20.1f} {a:19.1f} {a / m:6.1f}x {'ok' if a / m >= GOAL else 'below 3x'}")
    print(f"\nLethe's floor over HTTP (authenticated read of the project, no registry work): {floor_ops_s:.1f} ops/s")
    write_result("mlflow-http", {"mlflow_version": mlflow_version, "count": args.count, "rows": rows, "lethe_floor_ops_s": floor_ops_s})


if __name__ == "__main__":
    main()
