"""The run lifecycle: create, enqueue, execute (claim, heartbeat, handler, finish), wait,
cancel, retry and reap. Every executor (worker threads in-process, Celery workers) ends up in
``run_execute``; the row is the record of truth, so two executors never run the same run.
"""

import logging
import shutil
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.context import RunCancelled, RunContext
from jobs.logs import server_paths_hidden
from jobs.models import FINISHED_STATUSES, Run, RunStatus, WebhookEvent
from jobs.registry import run_cleanup_for, run_finished_hook_for, run_finished_listeners, run_handler_for, run_retry_hook_for
from core.errors import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

PROGRESS_MESSAGE_MAX_CHARS = 200


def run_create(*, project, kind, created_by, retry_of=None) -> Run:
    """A queued run; not yet enqueued (the caller adds its own spec rows first, then enqueues)."""
    if not kind:
        raise ValidationFailed("A run needs a kind.", fields={"kind": ["This field is required."]})
    return Run.objects.create(project=project, kind=kind, created_by=created_by, retry_of=retry_of)


def run_fields_restored(fields, now) -> None:
    """A run exported while queued or running is restored as failed (versions.project_scope's
    ``restored``): a restore never starts work."""
    if fields.get("status") not in FINISHED_STATUSES:
        fields.update(status=RunStatus.FAILED.value, finished_at=now, cancel_requested=False, error=f"restored from a bundle while {fields.get('status')}; retry it to run it")


def runs_unlink_for_project_delete(*, project, **signal) -> None:
    """Subscriber of versions.events.project_deleting: unlink retries from the runs they retried,
    so the project's runs delete in one statement whatever their order."""
    Run.objects.filter(project=project).update(retry_of=None)


def run_enqueue(*, run) -> None:
    """Hand the run to the configured executor once the current transaction commits, so an
    executor never looks for a row that is not visible yet (or was rolled back)."""
    from jobs.executors import executor_submit

    run_id = run.id
    transaction.on_commit(lambda: executor_submit(run_id=run_id))


def run_scratch_dir(run) -> Path:
    """A private working directory for the run, removed when the run finishes in any state.

    Handlers write partial outputs here, so a failed, cancelled or reaped run leaves no files.
    """
    path = Path(settings.VAR_DIR) / "runs" / str(run.id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scratch_dir_remove(run_id) -> None:
    shutil.rmtree(Path(settings.VAR_DIR) / "runs" / str(run_id), ignore_errors=True)


def _bounded_log(text: str) -> str:
    limit = settings.LETHE_RUN_LOG_MAX_CHARS
    return text[-limit:] if len(text) > limit else text


class DatabaseRunContext(RunContext):
    """What a handler sees during ``run_execute``: every call writes through to the run row."""

    def __init__(self, run):
        self.run_id = run.id
        self._log = run.log

    @property
    def scratch_dir(self) -> Path:
        return run_scratch_dir(Run(pk=self.run_id))

    def progress(self, fraction, message=""):
        fraction = min(max(float(fraction), 0.0), 1.0)
        Run.objects.filter(pk=self.run_id).update(progress=fraction, progress_message=str(message)[:PROGRESS_MESSAGE_MAX_CHARS], heartbeat_at=timezone.now())

    def log(self, line):
        self._log = _bounded_log(self._log + str(line).rstrip("\n") + "\n")
        Run.objects.filter(pk=self.run_id).update(log=self._log)

    def check_cancelled(self):
        # A run that is no longer ours (reaped after a stall) stops like a cancelled one, so a
        # handler that checks before registering never registers output for a failed run.
        state = Run.objects.filter(pk=self.run_id).values("status", "cancel_requested").first()
        if state is None or state["cancel_requested"] or state["status"] != RunStatus.RUNNING:
            raise RunCancelled()


class _Heartbeat(threading.Thread):
    def __init__(self, run_id, interval):
        super().__init__(name=f"lethe-heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.interval = interval
        self._stopped = threading.Event()

    def run(self):
        try:
            while not self._stopped.wait(self.interval):
                try:
                    Run.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.exception("heartbeat of run %s failed; will try again", self.run_id)
        finally:
            connection.close()

    def stop(self):
        self._stopped.set()
        self.join(timeout=max(self.interval, 1.0) + 5.0)


def run_execute(*, run_id, worker) -> Run | None:
    """Claim a queued run and execute its handler; returns the run as it ended.

    The claim is one conditional UPDATE, so a second delivery of the same run (Celery
    redelivery, a recovered in-process queue) finds nothing to claim and returns the run as it
    is. Returns None when no such run exists.
    """
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, worker=str(worker)[:200], started_at=now, heartbeat_at=now)
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        logger.warning("run %s does not exist; nothing to execute", run_id)
        return None
    if not claimed:
        logger.info("run %s is %s, not queued; not executing it again", run_id, run.status)
        return run

    ctx = DatabaseRunContext(run)
    heartbeat = _Heartbeat(run_id, settings.LETHE_HEARTBEAT_SECONDS)
    heartbeat.start()
    result, error = {}, ""
    try:
        handler = run_handler_for(run.kind)
        result = handler(run=run, ctx=ctx) or {}
        status = RunStatus.SUCCEEDED
    except RunCancelled:
        status, error = RunStatus.CANCELLED, "cancelled on request"
    except Exception as exc:
        # The error is shown to every member (lists, pages, webhooks): without server paths. The
        # log gets the whole traceback, which only project admins read as written (jobs.logs).
        status, error = RunStatus.FAILED, server_paths_hidden(str(exc)) or type(exc).__name__
        logger.exception("run %s failed", run_id)
        try:
            ctx.log(traceback.format_exc())
        except Exception:
            logger.exception("could not write the traceback of run %s to its log", run_id)
    finally:
        heartbeat.stop()
    return _run_finish(run=run, status=status, result=result, error=error)


def _run_cleanup(run) -> None:
    try:
        cleanup = run_cleanup_for(run.kind)
        if cleanup is not None:
            cleanup(run=run)
    except Exception:
        logger.exception("cleanup hook of run %s failed", run.pk)
    _scratch_dir_remove(run.pk)


def _run_finish(*, run, status, result, error) -> Run:
    # Leftovers go before the status does: once a run reads failed or cancelled, no orphan
    # files of it remain.
    if status == RunStatus.SUCCEEDED:
        _scratch_dir_remove(run.pk)
    else:
        _run_cleanup(run)
    fields = {"status": status, "finished_at": timezone.now(), "result": result, "error": error}
    if status == RunStatus.SUCCEEDED:
        fields["progress"] = 1.0
    with transaction.atomic():
        finished = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields)
        run.refresh_from_db()
        if finished:
            _run_finished_emit(run)
        else:
            logger.warning("run %s ended as %s but was already %s (reaped?); left as it is", run.pk, status, run.status)
    return run


def run_payload(run) -> dict:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "result": run.result,
        "error": run.error,
        "retry_of": run.retry_of_id,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _run_finished_emit(run) -> None:
    """Inside the transaction that records the finish: ``run.finished``, then the kind's own
    finished hook, then every registered finished listener (each in a savepoint: a failing hook
    is logged and never undoes the finish)."""
    from jobs.webhooks import webhook_emit

    webhook_emit(project=run.project, event=WebhookEvent.RUN_FINISHED, payload={"run": run_payload(run)})
    try:
        hook = run_finished_hook_for(run.kind)
        if hook is not None:
            with transaction.atomic():
                hook(run=run)
    except Exception:
        logger.exception("finished hook of run %s failed; the run is recorded as %s all the same", run.pk, run.status)
    for listener in run_finished_listeners():
        try:
            with transaction.atomic():
                listener(run=run)
        except Exception:
            logger.exception("finished listener %r of run %s failed; the run is recorded as %s all the same", listener, run.pk, run.status)


def run_wait(*, run, timeout=None, poll_seconds=0.5, on_update=None) -> Run:
    """Poll until the run has finished; ``on_update(run)`` is called after every poll.

    Raises TimeoutError after ``timeout`` seconds (None waits for ever).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if on_update is not None:
            on_update(run)
        if run.is_finished:
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {run.pk} is still {run.status} after {timeout:g} s")
        time.sleep(poll_seconds)


def _audit(*, run, actor, action, data=None):
    from versions.services import audit_record

    audit_record(project=run.project, actor=actor, action=action, object_type="run", object_id=str(run.pk), data=data or {})


def run_cancel(*, run, actor) -> Run:
    """Cancel a queued run at once; ask a running one to stop at its next step."""
    with transaction.atomic():
        now = timezone.now()
        username = getattr(actor, "username", "") or "someone"
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, cancel_requested=True, finished_at=now, error=f"cancelled by {username} before it started"
        ):
            run.refresh_from_db()
            _run_finished_emit(run)
        elif Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested=True):
            run.refresh_from_db()
        else:
            run.refresh_from_db()
            raise Conflict(f"Run {run.pk} is already {run.status}; only a queued or running run can be cancelled.")
        _audit(run=run, actor=actor, action="run.cancel", data={"status": run.status})
    if run.is_finished:
        _scratch_dir_remove(run.pk)
    return run


def run_retry(*, run, actor) -> Run:
    """A new queued run of the same kind, linked to the failed or cancelled one it retries."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise Conflict(f"Run {run.pk} is {run.status}; only a failed or cancelled run can be retried.")
    with transaction.atomic():
        new_run = run_create(project=run.project, kind=run.kind, created_by=actor, retry_of=run)
        retry_hook = run_retry_hook_for(run.kind)
        if retry_hook is not None:
            retry_hook(run=run, new_run=new_run)
        _audit(run=new_run, actor=actor, action="run.retry", data={"retry_of": run.pk})
        run_enqueue(run=new_run)
    return new_run


def run_requeue_lost(*, older_than=None) -> list[int]:
    """Send again every queued run older than ``older_than`` seconds (default
    LETHE_QUEUE_LOST_SECONDS) whose task the broker no longer holds: a Redis broker without
    persistence that restarted, a publish that failed after the run was committed. Returns the
    ids it sent. Only the Celery executor has a broker to lose tasks (the in-process executor
    re-submits every queued run when its process starts). Sending a run twice is harmless: the
    atomic claim in ``run_execute`` lets one delivery execute it."""
    from jobs.executors import celery_pending_run_ids, celery_submit

    if settings.LETHE_EXECUTOR != "celery":
        return []
    older_than = settings.LETHE_QUEUE_LOST_SECONDS if older_than is None else float(older_than)
    cutoff = timezone.now() - timedelta(seconds=older_than)
    queued = list(Run.objects.filter(status=RunStatus.QUEUED, created_at__lte=cutoff).order_by("id").values_list("id", flat=True))
    if not queued:
        return []
    pending = celery_pending_run_ids()
    if pending is None:
        logger.warning("the broker %s cannot be inspected; queued runs are not checked for lost tasks", settings.CELERY_BROKER_URL.split("://")[0])
        return []
    lost = [run_id for run_id in queued if run_id not in pending]
    for run_id in lost:
        celery_submit(run_id=run_id)
        logger.warning("run %s was queued but the broker held no task for it: sent again", run_id)
    return lost


def run_reap_stale(*, timeout=None) -> list[Run]:
    """Mark failed every running run whose heartbeat is older than ``timeout`` seconds
    (default LETHE_HEARTBEAT_TIMEOUT_SECONDS): its worker was killed or its machine lost.
    Returns the runs it failed."""
    timeout = settings.LETHE_HEARTBEAT_TIMEOUT_SECONDS if timeout is None else float(timeout)
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stale = Run.objects.filter(status=RunStatus.RUNNING).filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    reaped = []
    for run in stale.select_related("project"):
        message = f"worker {run.worker or '(unknown)'} stopped sending heartbeats for more than {timeout:g} s: marked failed"
        with transaction.atomic():
            # Conditional on the heartbeat we saw: a worker that just came back keeps its run.
            if not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at).update(
                status=RunStatus.FAILED, finished_at=timezone.now(), error=message
            ):
                continue
            run.refresh_from_db()
            _run_finished_emit(run)
        _run_cleanup(run)
        logger.warning("run %s: %s", run.pk, message)
        reaped.append(run)
    return reaped
