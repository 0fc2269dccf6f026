"""The web process is killed (SIGKILL) with in-process runs running and queued; a fresh process
started the way config/wsgi.py starts picks them up: none is left queued or running."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Run, RunStatus
from tests.jobs.conftest import wait_until
from tests.reliability.conftest import (
    HEARTBEAT_TIMEOUT_SECONDS,
    LONG_RUN,
    SHORT_RUN,
    kill_process_group,
    start_lethe_process,
    unreferenced_blobs,
)
from unlearning.models import UnlearningRun
from versions.models import Checkpoint

pytestmark = pytest.mark.slow

PROCESS_SCRIPT = "tests/reliability/web_process.py"


def test_runs_left_by_a_killed_web_process_are_recovered_at_the_next_start(background, subprocess_env, unlearning_inputs, user, reliability_settings, tmp_path):
    # given a web process (one in-process worker) that created a long run, which is running,
    # and two short ones queued behind it
    spec = {"user": user.pk, "checkpoint": unlearning_inputs["checkpoint"].pk, "forget": unlearning_inputs["forget"].pk, "runs": [LONG_RUN, SHORT_RUN, SHORT_RUN]}
    env = {**subprocess_env, "LETHE_EXECUTOR": "inprocess", "LETHE_INPROCESS_WORKERS": "1"}
    first = start_lethe_process([PROCESS_SCRIPT, "create", json.dumps(spec)], env=env, log_path=tmp_path / "first.log")
    try:
        created = wait_until(lambda: re.search(r"^created ([\d ]+)$", (tmp_path / "first.log").read_text(), re.M), timeout=60, message="the first process to create the runs")
        long_id, *short_ids = [int(value) for value in created.group(1).split()]
        wait_until(
            lambda: UnlearningRun.objects.get(run_id=long_id).current_step >= 1, timeout=90, message=f"the long run to report a step; log:\n{(tmp_path / 'first.log').read_text()}"
        )

        # when the process is killed with SIGKILL
        kill_process_group(first)
    finally:
        kill_process_group(first)
    assert dict(Run.objects.filter(pk__in=[long_id, *short_ids]).values_list("pk", "status")) == {
        long_id: RunStatus.RUNNING,
        short_ids[0]: RunStatus.QUEUED,
        short_ids[1]: RunStatus.QUEUED,
    }
    dead_worker = Run.objects.get(pk=long_id).worker
    stale_after = timedelta(seconds=HEARTBEAT_TIMEOUT_SECONDS + 0.5)
    wait_until(lambda: Run.objects.get(pk=long_id).heartbeat_at < timezone.now() - stale_after, timeout=30, message="the killed run's heartbeat to go stale")

    # and a fresh process starts as a server does
    ids = ",".join(str(pk) for pk in [long_id, *short_ids])
    second = start_lethe_process([PROCESS_SCRIPT, "serve", ids, "90"], env=env, log_path=tmp_path / "second.log")
    try:
        second.wait(timeout=120)
    finally:
        kill_process_group(second)
    log = (tmp_path / "second.log").read_text()
    assert second.returncode == 0, log

    # then the running run failed with the heartbeat message, the queued ones ran to the end
    runs = {run.pk: run for run in Run.objects.filter(pk__in=[long_id, *short_ids])}
    assert runs[long_id].status == RunStatus.FAILED
    assert runs[long_id].error == (f"worker {dead_worker} stopped sending heartbeats for more than {HEARTBEAT_TIMEOUT_SECONDS} s: marked failed")
    assert [(runs[pk].status, runs[pk].error) for pk in short_ids] == [(RunStatus.SUCCEEDED, ""), (RunStatus.SUCCEEDED, "")]
    assert {runs[pk].worker for pk in short_ids} == {f"inprocess:{dead_worker.split(':')[1]}:{second.pid}"}
    assert sorted(UnlearningRun.objects.exclude(produced_checkpoint=None).values_list("run_id", flat=True)) == short_ids
    assert Checkpoint.objects.filter(parent_edges__parent=unlearning_inputs["checkpoint"]).count() == len(short_ids)
    assert UnlearningRun.objects.get(run_id=long_id).produced_checkpoint is None
    assert Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count() == 0
    assert not (reliability_settings.VAR_DIR / "runs").exists() or list((reliability_settings.VAR_DIR / "runs").iterdir()) == []
    assert unreferenced_blobs() == set()
