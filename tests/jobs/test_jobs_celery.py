"""Scale-out: a real Redis broker and a real `celery -A config worker -Q <queue> -c 1` process."""
import pytest

from jobs.executors import celery_submit
from jobs.models import Run, RunStatus
from jobs.services import run_create, run_enqueue, run_reap_stale, run_wait
from tests.jobs.conftest import wait_until
from tests.jobs.handlers import outside_file
from versions.models import Checkpoint

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_celery_worker_executes_a_run_end_to_end(celery_worker, jobs_settings, project, user):
    # given the Celery executor and a queued run
    jobs_settings.LETHE_EXECUTOR = "celery"
    run = run_create(project=project, kind="test-steps", created_by=user)

    # when it is enqueued (on commit) and waited for
    run_enqueue(run=run)
    run = run_wait(run=run, timeout=90, poll_seconds=0.1)

    # then the worker executed it and registered its checkpoint
    checkpoint = Checkpoint.objects.get(created_by_run=run)
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
    assert Checkpoint.objects.filter(created_by_run=run).count() == 1


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
    assert Checkpoint.objects.filter(created_by_run=run).count() == 0
    assert not (jobs_settings.VAR_DIR / "runs" / str(run.pk)).exists()
    assert not outside_file(run).exists()
