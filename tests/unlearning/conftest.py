"""One tiny model per test session (building it takes seconds; every test reads it), and the
registry objects an unlearning run needs, created through the real services."""

import time

import pytest

from jobs.executors import inprocess_executor_shutdown
from jobs.models import Run, RunStatus
from mlcore.tiny import load_bundled_corpus
from versions import services

# Small slices of the bundled corpus keep each run to a fraction of a second per step.
FORGET_ROWS = [{"prompt": row["prompt"], "response": row["response"]} for row in load_bundled_corpus("harmful")[:12]]
RETAIN_ROWS = [{"prompt": row["prompt"], "response": row["response"]} for row in load_bundled_corpus("benign")[:24]]


@pytest.fixture
def lethe_var(settings, tmp_path):
    """Runs keep scratch directories and the materialized-checkpoint cache in this test's VAR_DIR."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    # A heartbeat thread writing while a test's open transaction holds SQLite's write lock
    # would wait out the lock; these runs take seconds, far inside the reaper's timeout.
    settings.LETHE_HEARTBEAT_SECONDS = 3600
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_DEVICE = "cpu"
    return settings.VAR_DIR


@pytest.fixture
def tiny_checkpoint(lethe_var, project, user, tiny_model_dir):
    model = services.model_create(project=project, name="tiny", actor=user)
    return services.checkpoint_register_directory(model=model, directory=tiny_model_dir, actor=user, kind="full", message="tiny base")


@pytest.fixture
def forget_version(project, user):
    dataset = services.dataset_create(project=project, name="harmful-forget", actor=user)
    return services.dataset_version_create(dataset=dataset, rows=FORGET_ROWS, actor=user)


@pytest.fixture
def retain_version(project, user):
    dataset = services.dataset_create(project=project, name="benign-retain", actor=user)
    return services.dataset_version_create(dataset=dataset, rows=RETAIN_ROWS, actor=user)


@pytest.fixture
def background(transactional_db):
    """In-process worker threads see committed data only; stop them before tables are flushed."""
    yield
    Run.objects.filter(status=RunStatus.RUNNING).update(cancel_requested=True)
    inprocess_executor_shutdown(wait=True)


def wait_until(predicate, *, timeout=60.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {message} after {timeout:g} s")
