"""`manage.py runs list|show|cancel|retry|wait|reap`."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.models import Run, RunStatus
from jobs.services import run_create, run_execute


def runs_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("runs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_list_and_show(project, user):
    # given a failed run and a queued one
    failed = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    queued = run_create(project=project, kind="test-steps", created_by=user)

    # when listed and shown
    listing, _ = runs_command("list", "--project", "safety")
    shown, _ = runs_command("show", str(failed.pk))

    # then each line says what the run is
    assert listing.splitlines() == [
        f"run {queued.pk}  test-steps  queued  0%",
        f"run {failed.pk}  test-fail  failed  100%  step 1/1  error: step 2 diverged: loss is nan",
    ]
    assert shown.splitlines()[0] == f"run {failed.pk}  test-fail  failed  100%  step 1/1  error: step 2 diverged: loss is nan"
    assert "--- log ---\nstep 1\nTraceback" in shown


@pytest.mark.django_db
def test_cancel_of_a_queued_run(project, user):
    run = run_create(project=project, kind="test-steps", created_by=user)
    out, _ = runs_command("cancel", str(run.pk))
    assert out == f"run {run.pk}: cancelled\n"
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


@pytest.mark.django_db
def test_cancel_of_a_finished_run_is_an_error(project, user):
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    with pytest.raises(CommandError) as error:
        runs_command("cancel", str(run.pk))
    assert str(error.value) == f"Run {run.pk} is already failed; only a queued or running run can be cancelled."


def test_retry_with_wait_shows_a_progress_bar_until_done(background, project, user):
    # given a cancelled run of a kind that succeeds
    run = run_create(project=project, kind="test-steps", created_by=user)
    runs_command("cancel", str(run.pk))

    # when it is retried with --wait
    out, err = runs_command("retry", str(run.pk), "--wait")

    # then the new run finished and the bar reached 100%
    retry = Run.objects.get(retry_of=run)
    assert retry.status == RunStatus.SUCCEEDED
    assert out.splitlines()[0] == f"run {retry.pk} queued (retry of run {run.pk})"
    assert out.splitlines()[1].startswith(f"run {retry.pk}  test-steps  succeeded  100%  step 3/3  result: ")
    assert f"run {retry.pk}: 100%|" in err


@pytest.mark.django_db
def test_wait_on_a_failed_run_exits_with_its_error(project, user):
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    with pytest.raises(CommandError) as error:
        runs_command("wait", str(run.pk))
    assert str(error.value) == f"run {run.pk} failed: step 2 diverged: loss is nan"


@pytest.mark.django_db
def test_reap(project, user):
    # given a running run silent for ten minutes
    run = run_create(project=project, kind="test-steps", created_by=user)
    silent_since = timezone.now() - timedelta(minutes=10)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, worker="celery:gpu-1:9", started_at=silent_since, heartbeat_at=silent_since)

    # when reaped with the default timeout (120 s)
    out, _ = runs_command("reap")

    # then it is failed
    assert out.splitlines() == [
        f"run {run.pk} failed: worker celery:gpu-1:9 stopped sending heartbeats for more than 120 s: marked failed",
        "1 stale run(s) failed",
        "0 lost queued run(s) sent again",
        "0 unregistered blob file(s) older than 3600 s removed",
    ]
