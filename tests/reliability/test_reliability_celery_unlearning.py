"""The same real unlearning run that succeeds in-process succeeds on a Celery worker, and a task
delivered twice executes it once (one child checkpoint)."""

import pytest

from jobs.executors import celery_submit
from jobs.models import RunStatus
from jobs.services import run_wait
from tests.jobs.conftest import wait_until
from tests.reliability.conftest import SHORT_RUN
from unlearning.models import UnlearningRun
from unlearning.services import unlearning_run_create
from versions.models import Checkpoint, LineageEdge

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_a_real_unlearning_run_succeeds_on_a_celery_worker(unlearning_worker, unlearning_inputs, user):
    # given an unlearning run enqueued (on commit) to the Celery executor
    spec = unlearning_run_create(
        parent_checkpoint=unlearning_inputs["checkpoint"], method="npo", hyperparameters=SHORT_RUN, forget_dataset_version=unlearning_inputs["forget"], actor=user
    )

    # when the worker executes it
    run = run_wait(run=spec.run, timeout=120, poll_seconds=0.2)

    # then it succeeded on the worker and registered its child with lineage
    spec.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.SUCCEEDED, "")
    assert run.worker.startswith("celery:")
    child = spec.produced_checkpoint
    assert run.result == {"type": "checkpoint", "id": child.pk, "model": "tiny", "number": 2}
    assert list(LineageEdge.objects.filter(child=child).values_list("parent_id", "relation", "method")) == [(unlearning_inputs["checkpoint"].pk, "unlearned-from", "npo")]


def test_a_real_unlearning_task_delivered_twice_executes_once(unlearning_worker, unlearning_inputs, user):
    # given an unlearning run whose task is published a second time by hand
    spec = unlearning_run_create(
        parent_checkpoint=unlearning_inputs["checkpoint"], method="npo", hyperparameters=SHORT_RUN, forget_dataset_version=unlearning_inputs["forget"], actor=user
    )
    celery_submit(run_id=spec.run_id)

    # when both deliveries have been processed
    wait_until(lambda: unlearning_worker.log().count("succeeded in") >= 2, timeout=120, message="both tasks to finish")

    # then the run executed once: one child checkpoint
    run = run_wait(run=spec.run, timeout=5)
    assert run.status == RunStatus.SUCCEEDED
    assert Checkpoint.objects.filter(parent_edges__parent=unlearning_inputs["checkpoint"]).count() == 1
    assert UnlearningRun.objects.get(pk=spec.pk).produced_checkpoint_id == run.result["id"]
