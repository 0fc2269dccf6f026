"""kill -9 of a real Celery worker in the middle of a real unlearning run on a tiny checkpoint."""

import pytest

from jobs.models import Run, RunStatus
from jobs.services import run_reap_stale, run_scratch_dir
from tests.jobs.conftest import wait_until
from tests.reliability.conftest import HEARTBEAT_TIMEOUT_SECONDS, LONG_RUN, blobs_in_storage, unreferenced_blobs
from unlearning.models import UnlearningRun
from unlearning.services import unlearning_run_create
from versions.models import Blob, Checkpoint

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_sigkill_mid_unlearning_fails_the_run_and_leaves_nothing_behind(unlearning_worker, unlearning_inputs, user, reliability_settings, _artifact_root):
    # given a long unlearning run that the worker has started and that has reported a step
    spec = unlearning_run_create(
        parent_checkpoint=unlearning_inputs["checkpoint"],
        method="npo",
        hyperparameters=LONG_RUN,
        forget_dataset_version=unlearning_inputs["forget"],
        actor=user,
    )
    run = spec.run
    wait_until(lambda: UnlearningRun.objects.get(pk=spec.pk).current_step >= 1, timeout=90, message=f"the run to report a step; worker log:\n{unlearning_worker.log()}")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run.worker.startswith("celery:")
    # The engine writes to the scratch directory only when it saves; a partial file stands in
    # for a kill during the save.
    (run_scratch_dir(run) / "output.partial").write_bytes(b"half a checkpoint")
    blobs_before = blobs_in_storage(_artifact_root)

    # when the worker's whole process group is killed and the heartbeat timeout passes
    unlearning_worker.kill_hard()
    reaped = wait_until(run_reap_stale, timeout=HEARTBEAT_TIMEOUT_SECONDS + 30, interval=0.2, message="the reaper to fail the run")

    # then the run failed saying why, no checkpoint was registered and no file is orphaned
    run.refresh_from_db()
    assert [item.pk for item in reaped] == [run.pk]
    assert run.status == RunStatus.FAILED
    assert run.error == f"worker {run.worker} stopped sending heartbeats for more than {HEARTBEAT_TIMEOUT_SECONDS} s: marked failed"
    assert list(Checkpoint.objects.values_list("pk", flat=True)) == [unlearning_inputs["checkpoint"].pk]
    assert UnlearningRun.objects.get(pk=spec.pk).produced_checkpoint is None
    assert not (reliability_settings.VAR_DIR / "runs" / str(run.pk)).exists()
    assert blobs_in_storage(_artifact_root) == blobs_before == set(Blob.objects.values_list("sha256", flat=True))
    assert unreferenced_blobs() == set()
    assert Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count() == 0
