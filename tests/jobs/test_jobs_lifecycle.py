"""The run lifecycle executed by the embedded in-process executor, end to end with real runs."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs.context import RunCancelled
from jobs.executors import inprocess_executor
from jobs.models import Run, RunStatus, WebhookDelivery
from jobs.services import (
    DatabaseRunContext,
    run_cancel,
    run_create,
    run_enqueue,
    run_execute,
    run_reap_stale,
    run_retry,
    run_scratch_dir,
    run_wait,
)
from jobs.webhooks import webhook_create
from tests.jobs.conftest import wait_until
from tests.jobs.handlers import checkpoints_registered_by, outside_file
from core.errors import Conflict


def scratch_path(settings, run):
    return settings.VAR_DIR / "runs" / str(run.pk)


def test_inprocess_executor_runs_a_run_end_to_end(background, project, user, settings):
    # given a queued run of a kind that steps, then registers a checkpoint
    run = run_create(project=project, kind="test-steps", created_by=user)

    # when it is enqueued and waited for
    run_enqueue(run=run)
    run = run_wait(run=run, timeout=60, poll_seconds=0.05)

    # then it succeeded, produced the checkpoint, and left no scratch files
    checkpoint = checkpoints_registered_by(run).get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.result == {"type": "checkpoint", "id": checkpoint.pk}
    assert run.progress == 1.0
    assert run.progress_message == "step 3/3"
    assert run.log == "step 1\nstep 2\nstep 3\n"
    assert run.error == ""
    assert run.worker.startswith("inprocess:")
    assert run.started_at <= run.heartbeat_at <= run.finished_at
    assert not scratch_path(settings, run).exists()
    assert not outside_file(run).exists()


def test_failed_run_keeps_its_error_and_leaves_nothing_registered(background, project, user, settings):
    # given a run whose handler raises after writing partial files
    run = run_create(project=project, kind="test-fail", created_by=user)

    # when it runs
    run_enqueue(run=run)
    run = run_wait(run=run, timeout=60, poll_seconds=0.05)

    # then it failed with the handler's message, and its files are gone (scratch + cleanup hook)
    assert run.status == RunStatus.FAILED
    assert run.error == "step 2 diverged: loss is nan"
    assert run.log.startswith("step 1\nTraceback (most recent call last):")
    assert run.result == {}
    assert checkpoints_registered_by(run).count() == 0
    assert not scratch_path(settings, run).exists()
    assert not outside_file(run).exists()


def test_cancel_stops_a_running_run_between_steps(background, project, user, settings):
    # given a long run that has started stepping
    run = run_create(project=project, kind="test-long", created_by=user)
    run_enqueue(run=run)
    wait_until(lambda: Run.objects.get(pk=run.pk).progress > 0, message="the run to make progress")

    # when it is cancelled
    requested = run_cancel(run=run, actor=user)
    requested_state = (requested.status, requested.cancel_requested)
    run = run_wait(run=run, timeout=60, poll_seconds=0.05)

    # then the request was recorded, and the run ended cancelled with nothing left behind
    assert requested_state == (RunStatus.RUNNING, True)
    assert run.status == RunStatus.CANCELLED
    assert run.error == "cancelled on request"
    assert checkpoints_registered_by(run).count() == 0
    assert not scratch_path(settings, run).exists()
    assert not outside_file(run).exists()


@pytest.mark.django_db
def test_cancel_of_a_queued_run_ends_it_at_once_and_it_never_executes(project, user):
    # given a queued run
    run = run_create(project=project, kind="test-steps", created_by=user)

    # when it is cancelled, then delivered to a worker anyway
    cancelled = run_cancel(run=run, actor=user)
    executed = run_execute(run_id=run.pk, worker="test")

    # then it is cancelled and the worker did not run it
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.error == "cancelled by alice before it started"
    assert executed.status == RunStatus.CANCELLED
    assert executed.started_at is None
    assert executed.log == ""


@pytest.mark.django_db
def test_cancel_of_a_finished_run_is_a_conflict(project, user):
    # given a finished run
    run = run_create(project=project, kind="test-fail", created_by=user)
    run_execute(run_id=run.pk, worker="test")

    # when it is cancelled, then the error says why not
    with pytest.raises(Conflict) as error:
        run_cancel(run=run, actor=user)
    assert str(error.value) == f"Run {run.pk} is already failed; only a queued or running run can be cancelled."


def test_a_run_delivered_twice_at_once_executes_once(background, project, user):
    # given a queued run
    run = run_create(project=project, kind="test-steps", created_by=user)
    outcomes = []

    def deliver(worker):
        try:
            outcomes.append(run_execute(run_id=run.pk, worker=worker))
        finally:
            connection.close()

    # when two workers receive it at the same moment
    threads = [threading.Thread(target=deliver, args=(f"worker-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one executed it
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.log == "step 1\nstep 2\nstep 3\n"
    assert checkpoints_registered_by(run).count() == 1
    assert len(outcomes) == 2


def test_retry_creates_a_linked_run_that_executes(background, project, user):
    # given a failed run
    failed = run_create(project=project, kind="test-fail", created_by=user)
    run_execute(run_id=failed.pk, worker="test")
    failed.refresh_from_db()

    # when it is retried
    retry = run_retry(run=failed, actor=user)
    retry = run_wait(run=retry, timeout=60, poll_seconds=0.05)

    # then a new run of the same kind, linked to the first, has run
    assert retry.pk != failed.pk
    assert retry.retry_of_id == failed.pk
    assert retry.kind == "test-fail"
    assert retry.status == RunStatus.FAILED
    assert list(failed.retries.values_list("pk", flat=True)) == [retry.pk]


@pytest.mark.django_db
def test_retry_of_a_succeeded_run_is_a_conflict(project, user):
    # given a succeeded run
    run = run_create(project=project, kind="test-steps", created_by=user)
    run = run_execute(run_id=run.pk, worker="test")

    # when it is retried, then the error says why not
    with pytest.raises(Conflict) as error:
        run_retry(run=run, actor=user)
    assert str(error.value) == f"Run {run.pk} is succeeded; only a failed or cancelled run can be retried."


@pytest.mark.django_db
def test_reaper_fails_a_run_whose_heartbeat_stopped_and_spares_a_live_one(project, user, settings):
    # given a running run whose worker died a minute ago (partial files left) and a live one
    stale = run_create(project=project, kind="test-steps", created_by=user)
    live = run_create(project=project, kind="test-steps", created_by=user)
    minute_ago = timezone.now() - timedelta(seconds=60)
    Run.objects.filter(pk=stale.pk).update(status=RunStatus.RUNNING, worker="celery:gpu-3:41", started_at=minute_ago, heartbeat_at=minute_ago)
    Run.objects.filter(pk=live.pk).update(status=RunStatus.RUNNING, worker="celery:gpu-4:42", started_at=minute_ago, heartbeat_at=timezone.now())
    (run_scratch_dir(stale) / "adapter_model.safetensors").write_bytes(b"partial")
    outside_file(stale).parent.mkdir(parents=True, exist_ok=True)
    outside_file(stale).write_text("partial")

    # when stale runs are reaped with a 30 s timeout
    reaped = run_reap_stale(timeout=30)

    # then only the stale one failed, with a message that says why, and its files are gone
    stale.refresh_from_db()
    live.refresh_from_db()
    assert [run.pk for run in reaped] == [stale.pk]
    assert stale.status == RunStatus.FAILED
    assert stale.error == "worker celery:gpu-3:41 stopped sending heartbeats for more than 30 s: marked failed"
    assert live.status == RunStatus.RUNNING
    assert not scratch_path(settings, stale).exists()
    assert not outside_file(stale).exists()


def test_executor_start_recovers_runs_left_behind_by_a_stopped_process(background, project, user, settings):
    # given a queued run nobody executed and a running run whose process is gone
    settings.LETHE_HEARTBEAT_TIMEOUT_SECONDS = 30
    left_queued = run_create(project=project, kind="test-steps", created_by=user)
    left_running = run_create(project=project, kind="test-steps", created_by=user)
    hour_ago = timezone.now() - timedelta(hours=1)
    Run.objects.filter(pk=left_running.pk).update(status=RunStatus.RUNNING, worker="inprocess:web-1:7", started_at=hour_ago, heartbeat_at=hour_ago)

    # when the in-process executor starts
    inprocess_executor()
    left_queued = run_wait(run=left_queued, timeout=60, poll_seconds=0.05)
    left_running = run_wait(run=left_running, timeout=60, poll_seconds=0.05)

    # then the queued run was executed and the running one failed clearly
    assert left_queued.status == RunStatus.SUCCEEDED
    assert left_running.status == RunStatus.FAILED
    assert left_running.error == "worker inprocess:web-1:7 stopped sending heartbeats for more than 30 s: marked failed"


def test_finished_run_is_announced_to_webhooks(background, project, user, closed_port_url):
    # given a hook on run.finished
    hook = webhook_create(project=project, url=closed_port_url, events=["run.finished"], actor=user)
    run = run_create(project=project, kind="test-fail", created_by=user)

    # when a run finishes
    run = run_execute(run_id=run.pk, worker="test")

    # then one delivery carries its outcome
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.event == "run.finished"
    assert delivery.payload["run"]["id"] == run.pk
    assert delivery.payload["run"]["status"] == "failed"
    assert delivery.payload["run"]["error"] == "step 2 diverged: loss is nan"


@pytest.mark.django_db
def test_log_keeps_only_the_newest_characters(project, user, settings):
    # given a context whose log is bounded to 12 characters
    settings.LETHE_RUN_LOG_MAX_CHARS = 12
    run = run_create(project=project, kind="test-steps", created_by=user)
    ctx = DatabaseRunContext(run)

    # when more is logged than fits
    for line in ("first", "second", "third"):
        ctx.log(line)

    # then the newest 12 characters are kept
    run.refresh_from_db()
    assert run.log == "econd\nthird\n"


@pytest.mark.django_db
def test_progress_is_clamped_and_its_message_bounded(project, user):
    # given a context
    run = run_create(project=project, kind="test-steps", created_by=user)
    ctx = DatabaseRunContext(run)

    # when progress overshoots with a long message
    ctx.progress(1.7, "x" * 500)

    # then the fraction is 1 and the message 200 characters
    run.refresh_from_db()
    assert run.progress == 1.0
    assert run.progress_message == "x" * 200


@pytest.mark.django_db
def test_check_cancelled_raises_once_cancel_is_requested(project, user):
    # given a running run's context
    run = run_create(project=project, kind="test-steps", created_by=user)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    ctx = DatabaseRunContext(run)
    ctx.check_cancelled()

    # when a cancel is requested, then the next check raises
    run_cancel(run=run, actor=user)
    with pytest.raises(RunCancelled):
        ctx.check_cancelled()


@pytest.mark.django_db
def test_unknown_run_kind_fails_the_run_with_a_clear_error(project, user):
    # given a run of a kind nobody registered
    run = run_create(project=project, kind="no-such-kind", created_by=user)

    # when it executes, then it fails saying so
    run = run_execute(run_id=run.pk, worker="test")
    assert run.status == RunStatus.FAILED
    assert run.error == "no handler registered for run kind 'no-such-kind'"
