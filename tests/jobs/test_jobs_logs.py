"""Who reads what of a run's log: project admins the log as written (traceback, server paths),
every other member the log without tracebacks and with paths cut to file names; a run's error
never carries server paths. And `manage.py runs reap` exits cleanly after sending its webhooks."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from jobs import webhooks
from jobs.logs import log_without_internals, server_paths_hidden
from jobs.models import Run, RunStatus
from jobs.services import run_create, run_execute
from tests.jobs.conftest import REPO_ROOT, wait_until, worker_database_url
from versions.models import Role

HIDDEN = "(traceback hidden: project admins see the full log)"
ERROR = "[Errno 2] No such file or directory: '…/weights.safetensors'"


@pytest.fixture
def failed_run(project, user):
    """A run that failed opening a file of its scratch directory: a real FileNotFoundError."""
    run = run_execute(run_id=run_create(project=project, kind="test-missing-file", created_by=user).pk, worker="test")
    assert run.status == RunStatus.FAILED
    return run


def members(project, make_user):
    return {role: make_user(role.label, role=role, project=project) for role in (Role.VIEWER, Role.EDITOR, Role.REVIEWER)}


@pytest.mark.django_db
def test_the_api_shows_tracebacks_and_paths_to_admins_only(failed_run, project, user, make_user, client_for, settings):
    scratch = str(Path(settings.VAR_DIR) / "runs" / str(failed_run.pk))
    readers = {**members(project, make_user), Role.ADMIN: user}

    logs = {role: client_for(reader).get(f"/api/v1/projects/safety/runs/{failed_run.pk}/").json() for role, reader in readers.items()}

    full = logs[Role.ADMIN]["log"]
    assert full.startswith(f"loading weights from {scratch}\nTraceback (most recent call last):\n")
    assert "tests/jobs/handlers.py" in full and scratch in full
    for role in (Role.VIEWER, Role.EDITOR, Role.REVIEWER):
        assert logs[role]["log"] == f"loading weights from …/{failed_run.pk}\n{HIDDEN}\nFileNotFoundError: {ERROR}\n"
    assert {logs[role]["error"] for role in readers} == {ERROR}


@pytest.mark.django_db
def test_the_run_page_shows_tracebacks_and_paths_to_admins_only(failed_run, project, user, make_user, settings):
    viewer = members(project, make_user)[Role.VIEWER]

    def page(reader):
        client = Client()
        client.force_login(reader)
        return client.get(f"/p/safety/runs/{failed_run.pk}/?plain=1").content.decode()

    as_viewer, as_admin = page(viewer), page(user)

    assert "Traceback (most recent call last):" in as_admin and str(settings.VAR_DIR) in as_admin
    assert "Traceback (most recent call last):" not in as_viewer and str(settings.VAR_DIR) not in as_viewer
    assert HIDDEN in as_viewer and "handlers.py" not in as_viewer
    assert ERROR.replace("'", "&#x27;") in as_viewer


def test_log_reduction_keeps_what_went_wrong():
    log = (
        "step 1\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/lethe/jobs/services.py", line 140, in run_execute\n'
        "    result = handler(run=run, ctx=ctx) or {}\n"
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "KeyError: 'x'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/lethe/mlcore/loading.py", line 9, in load\n'
        "ValueError: no config.json in /var/lib/lethe/runs/3/base\n"
        "see https://huggingface.co/org/model/tree/main and models/tiny/c/1\n"
    )

    assert log_without_internals(log) == (
        "step 1\n"
        + HIDDEN
        + "\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\n"
        + HIDDEN
        + "\nValueError: no config.json in …/base\nsee https://huggingface.co/org/model/tree/main and models/tiny/c/1\n"
    )
    assert server_paths_hidden("/etc/passwd and /tmp") == "…/passwd and /tmp"


@pytest.mark.django_db(transaction=True)
def test_runs_reap_sends_its_webhooks_and_exits_without_a_thread_exception(project, user, endpoint, settings, allow_loopback):
    # given a run whose worker stopped long ago, and a webhook for finished runs
    webhooks.webhook_create(project=project, url=endpoint.url, events=["run.finished"], actor=user)
    stale = timezone.now() - timedelta(hours=1)
    run = run_create(project=project, kind="test-steps", created_by=user)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=stale, heartbeat_at=stale)

    # when the reaper runs as the compose file runs it: a process of its own
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "LETHE_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONPATH": str(REPO_ROOT),
        "LETHE_EGRESS_ALLOW_NETWORKS": "127.0.0.0/8",
    }  # the recording endpoint listens on loopback, as an operator would allow
    result = subprocess.run([sys.executable, "manage.py", "runs", "reap"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

    # then it failed the run, the hook had its delivery before the process ended, and it exited cleanly
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [f"run {run.pk} failed: worker (unknown) stopped sending heartbeats for more than 120 s: marked failed", "1 stale run(s) failed"]
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, result.stderr
    assert [request["headers"]["X-Lethe-Event"] for request in endpoint.requests] == ["run.finished"]
    assert wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.FAILED)
