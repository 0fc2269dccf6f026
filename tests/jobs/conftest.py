"""Fixtures for the run lifecycle: test-only run kinds, a private VAR_DIR, the in-process
executor and webhook dispatcher stopped after each test, a real HTTP endpoint on loopback and
real Celery workers on a real Redis."""

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from jobs.executors import inprocess_executor_shutdown
from jobs.models import Run, RunStatus
from jobs.registry import register_run_handlers_from_spec
from jobs.webhooks import webhook_dispatcher_shutdown

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # the handlers are imported as tests.jobs.handlers, as in a worker
from tests.jobs.handlers import HANDLERS_SPEC  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture(autouse=True)
def jobs_settings(settings, tmp_path):
    """Runs keep their scratch directories under this test's own VAR_DIR."""
    register_run_handlers_from_spec(HANDLERS_SPEC)
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_HEARTBEAT_SECONDS = 0.1
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.LETHE_WEBHOOK_TIMEOUT_SECONDS = 5
    # The recording endpoints listen on 127.0.0.1, which outgoing requests may reach only when allowed.
    settings.LETHE_EGRESS_ALLOW_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def background(transactional_db):
    """Worker threads see committed data only; they are stopped before the tables are flushed."""
    yield
    Run.objects.filter(status=RunStatus.RUNNING).update(cancel_requested=True)
    inprocess_executor_shutdown(wait=True)
    webhook_dispatcher_shutdown(wait=True)


def wait_until(predicate, *, timeout=30.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {message} after {timeout:g} s")


class RecordingEndpoint:
    """A real HTTP server on 127.0.0.1 that records each POST and answers with scripted codes."""

    def __init__(self):
        self.requests = []
        self.codes = []  # answered in order; 200 once exhausted
        self.location = ""  # sent as Location with a 3xx code
        self.release = threading.Event()
        self.release.set()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.release.wait(30)
                endpoint.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                code = endpoint.codes.pop(0) if endpoint.codes else 200
                self.send_response(code)
                if 300 <= code < 400 and endpoint.location:
                    self.send_header("Location", endpoint.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lethe"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = RecordingEndpoint()
    yield server
    server.close()


@pytest.fixture
def closed_port_url():
    """A loopback URL nothing listens on: every attempt is a connection error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


# ---------------------------------------------------------------- Celery


@pytest.fixture
def redis_broker():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"needs a Redis server at {REDIS_URL}, which is not answering ({exc})")
    yield REDIS_URL
    client.close()


def worker_database_url():
    """The test database as a DATABASE_URL, so a worker process reads and writes the same data."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.skip(f"no worker DATABASE_URL for {connection.vendor}")


class CeleryWorker:
    def __init__(self, *, queue, log_path, env, node=None):
        self.queue = queue
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queue,
                "-c",
                "1",
                "--loglevel=INFO",
                "-n",
                f"{node or queue}@%h",  # workers sharing a queue need names of their own
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout=90):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"celery worker exited with {self.process.returncode}:\n{self.log()}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, interval=0.2, message=f"the celery worker to be ready; log:\n{self.log()}")

    def kill_hard(self):
        """kill -9 of the worker: the main process and its pool child, as when a machine is lost."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self._log.close()


def worker_env(*, broker, var_dir, artifact_root, **settings):
    """The environment of a worker process started by a test: this test's database, broker,
    VAR_DIR and artifact folder, plus ``settings`` (environment variables)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker,
        "LETHE_VAR_DIR": str(var_dir),
        "LETHE_ARTIFACT_ROOT": str(artifact_root),
        **settings,
    }


@pytest.fixture
def celery_worker(redis_broker, background, jobs_settings, _artifact_root, tmp_path):
    """A real `celery -A config worker -Q <queue> -c 1` on this test database and a private queue."""
    queue = f"lethe-test-jobs-{uuid.uuid4().hex[:12]}"
    jobs_settings.CELERY_BROKER_URL = redis_broker
    jobs_settings.CELERY_TASK_DEFAULT_QUEUE = queue
    env = worker_env(
        broker=redis_broker,
        var_dir=jobs_settings.VAR_DIR,
        artifact_root=_artifact_root,
        LETHE_EXTRA_RUN_HANDLERS=HANDLERS_SPEC,
        LETHE_HEARTBEAT_SECONDS="0.1",
        PYTHONPATH=str(REPO_ROOT),
    )
    worker = CeleryWorker(queue=queue, log_path=tmp_path / "worker.log", env=env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
        import redis

        redis.Redis.from_url(redis_broker).delete(queue)
