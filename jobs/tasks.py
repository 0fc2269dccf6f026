"""Celery tasks: thin wrappers that load a run by id and call the service.

Late acknowledgement and a prefetch of one come from settings (CELERY_TASK_ACKS_LATE,
CELERY_WORKER_PREFETCH_MULTIPLIER): a worker lost mid-run leaves the message to be delivered
again, and the atomic claim in ``run_execute`` makes that second delivery a no-op.
"""

import logging

from celery import shared_task
from celery.signals import worker_ready

from jobs.executors import CELERY_TASK_EXECUTE_RUN, worker_name
from jobs.services import run_execute, run_reap_stale

logger = logging.getLogger(__name__)


@shared_task(name=CELERY_TASK_EXECUTE_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_run(run_id):
    run_execute(run_id=run_id, worker=worker_name("celery"))


@worker_ready.connect
def reap_stale_runs_at_worker_start(**kwargs):
    try:
        reaped = run_reap_stale()
    except Exception:
        logger.exception("reaping stale runs at worker start failed")
        return
    if reaped:
        logger.warning("failed %d run(s) whose worker had stopped: %s", len(reaped), ", ".join(str(r.pk) for r in reaped))
