"""Scale-out: a real Redis broker and a real `celery -A config worker -Q <queue> -c 1` process."""

import os
import socket
import subprocess
import uuid

import pytest

import redis

from jobs.executors import celery_pending_run_ids, celery_submit
from jobs.models import Run, RunStatus
from jobs.services import run_create, run_enqueue, run_reap_stale, run_requeue_lost, run_wait
from tests.jobs.conftest import HANDLERS_SPEC, REPO_ROOT, CeleryWorker, wait_until, worker_database_url
from tests.jobs.handlers import MEDIUM_STEPS, checkpoints_registered_by, outside_file

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_celery_worker_executes_a_run_end_to_end(celery_worker, jobs_settings, project, user):
    # given the Celery executor and a queued run
    jobs_settings.LETHE_EXECUTOR = "celery"
    run = run_create(project=project, kind="test-steps", created_by=user)

    # when it is enqueued (on commit) and waited for
    run_enqueue(run=run)
    run = run_wait(run=run, timeout=90, poll_seconds=0.1)

    # then the worker executed it and registered its checkpoint
    checkpoint = checkpoints_registered_by(run).get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.result == {"type": "checkpoint", "id": checkpoint.pk}
    assert run.log == "step 1\nstep 2\nstep 3\n"
    assert run.worker.startswith("celery:")
    assert not (jobs_settings.VAR_DIR / "runs" / str(run.pk)).exists()


def test_a_task_delivered_twice_executes_the_run_once(celery_worker, project, user):
    # given a queued run
    run = run_create(project=project, kind="test-steps", created_by=user)

    # when its task is published twice and both deliveries are processed
    celery_submit(run_id=run.pk)
    celery_submit(run_id=run.pk)
    wait_until(lambda: celery_worker.log().count("execute_run[") >= 4, timeout=90, message="both deliveries to be processed")
    wait_until(lambda: celery_worker.log().count("succeeded in") >= 2, timeout=90, message="both tasks to finish")

    # then the run executed once
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.log == "step 1\nstep 2\nstep 3\n"
    assert checkpoints_registered_by(run).count() == 1


def test_worker_killed_mid_run_ends_failed_after_the_heartbeat_timeout(celery_worker, project, user, jobs_settings):
    # given a long run executing on the worker
    run = run_create(project=project, kind="test-long", created_by=user)
    celery_submit(run_id=run.pk)
    wait_until(lambda: Run.objects.get(pk=run.pk).progress > 0, timeout=90, message="the run to make progress")
    assert (jobs_settings.VAR_DIR / "runs" / str(run.pk)).exists()

    # when the worker is killed with SIGKILL and the reaper runs with a 1 s heartbeat timeout
    celery_worker.kill_hard()
    reaped = wait_until(lambda: run_reap_stale(timeout=1), timeout=30, message="the reaper to fail the run")

    # then the run failed saying why, registered nothing and left no files
    run.refresh_from_db()
    assert [r.pk for r in reaped] == [run.pk]
    assert run.status == RunStatus.FAILED
    assert run.error == f"worker {run.worker} stopped sending heartbeats for more than 1 s: marked failed"
    assert checkpoints_registered_by(run).count() == 0
    assert not (jobs_settings.VAR_DIR / "runs" / str(run.pk)).exists()
    assert not outside_file(run).exists()


def test_a_run_whose_task_the_broker_lost_is_sent_again_and_executes_once(celery_worker, jobs_settings, project, user):
    # given the Celery executor and a queued run whose task never reached the broker (a Redis
    # without persistence restarted, or the publish failed after the run was committed)
    jobs_settings.LETHE_EXECUTOR = "celery"
    run = run_create(project=project, kind="test-steps", created_by=user)
    assert celery_pending_run_ids() == set()

    # when the reaper looks for lost tasks
    resent = run_requeue_lost(older_than=0)

    # then it sent the run again, and the worker executed it once
    assert resent == [run.pk]
    run = run_wait(run=run, timeout=90, poll_seconds=0.1)
    assert run.status == RunStatus.SUCCEEDED
    assert run.log == "step 1\nstep 2\nstep 3\n"
    assert checkpoints_registered_by(run).count() == 1
    assert run_requeue_lost(older_than=0) == []


def test_a_queued_run_whose_task_waits_in_the_broker_is_not_sent_twice(redis_broker, jobs_settings, project, user):
    # given the Celery executor, a private queue no worker reads, and a run published to it
    queue = f"lethe-test-lost-{uuid.uuid4().hex[:12]}"
    jobs_settings.LETHE_EXECUTOR = "celery"
    jobs_settings.CELERY_BROKER_URL = redis_broker
    jobs_settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(redis_broker)
    try:
        run = run_create(project=project, kind="test-steps", created_by=user)
        celery_submit(run_id=run.pk)

        # when the reaper looks while the task waits in the queue
        # then it leaves the run alone
        assert celery_pending_run_ids() == {run.pk}
        assert run_requeue_lost(older_than=0) == []
        assert client.llen(queue) == 1

        # and when the broker loses the queue (a restart without persistence), the run is sent again, once
        client.delete(queue)
        assert run_requeue_lost(older_than=0) == [run.pk]
        assert client.llen(queue) == 1
        assert celery_pending_run_ids() == {run.pk}

        # and a run younger than the grace period is left alone even when its task is missing
        client.delete(queue)
        assert run_requeue_lost(older_than=3600) == []
    finally:
        client.delete(queue)
        client.close()


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, without persistence (as
    .ci/run and the compose file start it), so the test can restart it under a worker."""

    def __init__(self, tmp_path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", str(self.tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers():
            try:
                return client.ping()
            except redis.exceptions.ConnectionError:
                return False

        wait_until(answers, timeout=30, message="the private redis-server to answer")
        client.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def private_redis(redis_broker, tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_broker_restart_under_a_running_run_lets_it_finish_once(private_redis, background, jobs_settings, _artifact_root, tmp_path, project, user):
    # given a Celery worker on a broker of this test's own, and a run executing on it
    queue = f"lethe-test-restart-{uuid.uuid4().hex[:12]}"
    jobs_settings.LETHE_EXECUTOR = "celery"
    jobs_settings.CELERY_BROKER_URL = private_redis.url
    jobs_settings.CELERY_TASK_DEFAULT_QUEUE = queue
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": private_redis.url,
        "LETHE_VAR_DIR": str(jobs_settings.VAR_DIR),
        "LETHE_ARTIFACT_ROOT": str(_artifact_root),
        "LETHE_EXTRA_RUN_HANDLERS": HANDLERS_SPEC,
        "LETHE_HEARTBEAT_SECONDS": "0.1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    worker = CeleryWorker(queue=queue, log_path=tmp_path / "worker.log", env=env)
    try:
        worker.wait_ready()
        run = run_create(project=project, kind="test-medium", created_by=user)
        celery_submit(run_id=run.pk)
        wait_until(lambda: Run.objects.get(pk=run.pk).progress > 0, timeout=90, message="the run to make progress")

        # when the broker restarts (losing everything it held) while the run executes
        private_redis.stop()
        private_redis.start()

        # then the run finishes once, with every step logged once and one checkpoint
        run = run_wait(run=run, timeout=90, poll_seconds=0.1)
        assert run.status == RunStatus.SUCCEEDED
        assert run.log == "".join(f"step {step}\n" for step in range(1, MEDIUM_STEPS + 1))
        assert checkpoints_registered_by(run).count() == 1
        # and the reaper has nothing to send again: the run is no longer queued
        assert run_requeue_lost(older_than=0) == []

        # and the worker is back on the restarted broker: a run sent now executes too
        second = run_create(project=project, kind="test-steps", created_by=user)
        celery_submit(run_id=second.pk)
        second = run_wait(run=second, timeout=90, poll_seconds=0.1)
        assert second.status == RunStatus.SUCCEEDED
        assert run.worker == second.worker
    finally:
        worker.stop()
