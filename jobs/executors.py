"""How queued runs get executed. ``LETHE_EXECUTOR`` picks one:

- ``inprocess`` (default): worker threads inside the process that created the run (CLI, web
  server); nothing else to install or start;
- ``celery``: one Celery task per run, carrying only its id, on the ``gpu`` queue of a Redis
  broker; workers run ``celery -A config worker -Q gpu -c 1``.

Both end in ``jobs.services.run_execute``, which claims the run atomically (the in-process
executor reaches it through ``executor_work_register``, Celery through the task's name).
"""

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

CELERY_TASK_EXECUTE_RUN = "jobs.tasks.execute_run"

# What the in-process executor's threads call: ``execute(*, run_id, worker)`` and
# ``reap_stale()`` (jobs.services.run_execute and run_reap_stale), installed by JobsConfig.ready.
# The services submit runs here, so this module does not import them back.
_WORK = {}


def executor_work_register(*, execute, reap_stale) -> None:
    _WORK.update(execute=execute, reap_stale=reap_stale)


def executor_submit(*, run_id) -> None:
    """Send a run to the configured executor (called on commit by ``run_enqueue``)."""
    name = settings.LETHE_EXECUTOR
    if name == "inprocess":
        inprocess_executor().submit(run_id)
    elif name == "celery":
        celery_submit(run_id=run_id)
    else:
        raise ImproperlyConfigured(f"LETHE_EXECUTOR is {name!r}; expected 'inprocess' or 'celery'")


def celery_queue() -> str:
    return settings.CELERY_TASK_DEFAULT_QUEUE


def celery_submit(*, run_id, broker_url=None, queue=None) -> None:
    """Publish one ``execute_run`` task. The broker URL and queue are read from settings at
    publish time (not when the Celery app was configured), so they can be changed per call."""
    from config.celery import app

    with app.connection_for_write(broker_url or settings.CELERY_BROKER_URL) as conn:
        app.send_task(CELERY_TASK_EXECUTE_RUN, args=[run_id], queue=queue or celery_queue(), connection=conn)


def celery_pending_run_ids(*, broker_url=None, queue=None) -> set[int] | None:
    """The ids of the runs whose ``execute_run`` task the broker holds: waiting in the queue (at
    any priority) or delivered but not acknowledged yet. None when the broker cannot be read this
    way (only Redis, the supported broker, can).

    A Redis broker run without persistence loses its queue when it restarts; the reaper compares
    the queued runs with this set to find the runs whose task is gone."""
    import base64
    import json

    import redis

    url = broker_url or settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    queue = queue or celery_queue()
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    try:
        # kombu's Redis transport: one list per priority step ("<queue>" and "<queue>\x06\x16<n>")
        # and one hash of delivered, unacknowledged messages ([message, exchange, routing key]).
        raw = []
        for name in [queue.encode(), *client.scan_iter(match=queue.encode() + b"\x06\x16*")]:
            raw.extend(client.lrange(name, 0, -1))
        # The unacked hash is shared by every queue of the broker: keep this queue's messages.
        for value in client.hvals("unacked"):
            message, _exchange, routing_key = json.loads(value)
            if routing_key == queue:
                raw.append(json.dumps(message))
    finally:
        client.close()
    run_ids = set()
    for item in raw:
        message = json.loads(item)
        if message.get("headers", {}).get("task") != CELERY_TASK_EXECUTE_RUN:
            continue
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if args:
            run_ids.add(int(args[0]))
    return run_ids


def worker_name(prefix) -> str:
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}"


class InProcessExecutor:
    """A thread pool executing runs in this process, plus a periodic reaper.

    At start it recovers what a stopped process left behind: stale running runs are failed
    with a message that says so, and queued runs are submitted again (the atomic claim keeps a
    run from executing twice when several processes recover the same queue).
    """

    def __init__(self, *, workers, reap_seconds):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lethe-run")
        self._stopped = threading.Event()
        self._reaper = threading.Thread(target=self._reap_periodically, args=(reap_seconds,), name="lethe-reaper", daemon=True)
        self.worker = worker_name("inprocess")

    def start(self):
        # Recovery runs on the reaper thread: it needs its own database connection, and the
        # caller (a request, a test) must not wait for it.
        self._reaper.start()

    def submit(self, run_id):
        return self._pool.submit(self._execute, run_id)

    def shutdown(self, *, wait=True):
        self._stopped.set()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        if wait and self._reaper.is_alive():
            self._reaper.join()

    def _execute(self, run_id):
        close_old_connections()
        try:
            return _WORK["execute"](run_id=run_id, worker=self.worker)
        except Exception:
            logger.exception("executing run %s failed outside its handler", run_id)
        finally:
            connection.close()

    def _recover(self):
        from jobs.models import Run, RunStatus
        from versions.blob_store import blobs_sweep_unreferenced

        try:
            _WORK["reap_stale"]()
            for run_id in Run.objects.filter(status=RunStatus.QUEUED).order_by("id").values_list("id", flat=True):
                self.submit(run_id)
            blobs_sweep_unreferenced()  # files a killed process wrote but never registered
        except Exception:
            logger.exception("recovering queued runs at start failed")

    def _reap_periodically(self, interval):
        try:
            self._recover()
            while not self._stopped.wait(interval):
                try:
                    _WORK["reap_stale"]()
                except Exception:
                    logger.exception("periodic reaping of stale runs failed")
                finally:
                    close_old_connections()
        finally:
            connection.close()


_executor: InProcessExecutor | None = None
_executor_lock = threading.Lock()


def inprocess_executor() -> InProcessExecutor:
    """The process's in-process executor, started (and recovered) on first use."""
    global _executor
    with _executor_lock:
        if _executor is None:
            executor = InProcessExecutor(
                workers=settings.LETHE_INPROCESS_WORKERS,
                reap_seconds=max(settings.LETHE_HEARTBEAT_TIMEOUT_SECONDS / 4, 1.0),
            )
            executor.start()
            _executor = executor
        return _executor


def inprocess_executor_shutdown(*, wait=True) -> None:
    """Stop the in-process executor (tests, process exit); the next submit starts a new one."""
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=wait)


def executor_start_for_server() -> None:
    """Start the configured executor's recovery in a server process (wsgi/asgi start-up), so
    queued runs left by a stopped process are picked up without waiting for a new run."""
    if settings.LETHE_EXECUTOR == "inprocess":
        inprocess_executor()
