"""Fixtures for process-level failures: a private VAR_DIR and artifact root shared with the
subprocesses a test starts (Celery workers, stand-ins for the web process), a tiny checkpoint
and a forget set made through the real services, and helpers that look for leftovers."""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobs.executors import inprocess_executor_shutdown
from jobs.models import Run, RunStatus
from tests.jobs.conftest import CeleryWorker, redis_broker, worker_database_url  # noqa: F401 (redis_broker is a fixture)
from mlcore.tiny import load_bundled_corpus
from versions import services

REPO_ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_TIMEOUT_SECONDS = 3
FORGET_ROWS = [{"prompt": row["prompt"], "response": row["response"]} for row in load_bundled_corpus("harmful")[:8]]
# A small learning rate keeps NPO far from the forget-loss ceiling, so a long run stays running
# until it is killed.
LONG_RUN = {"learning_rate": 1e-5, "max_steps": 5000, "batch_size": 2, "max_length": 64}
SHORT_RUN = {"learning_rate": 1e-4, "max_steps": 2, "batch_size": 2, "max_length": 64}


@pytest.fixture
def reliability_settings(settings, tmp_path, _artifact_root):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_HEARTBEAT_TIMEOUT_SECONDS = HEARTBEAT_TIMEOUT_SECONDS
    return settings


@pytest.fixture
def background(transactional_db):
    """Subprocesses see committed data only; anything this process started stops before the flush."""
    yield
    Run.objects.filter(status=RunStatus.RUNNING).update(cancel_requested=True)
    inprocess_executor_shutdown(wait=True)


@pytest.fixture
def subprocess_env(reliability_settings, _artifact_root):
    """The environment of a Lethe process that shares this test's database, VAR_DIR and blobs."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": worker_database_url(),
        "LETHE_VAR_DIR": str(reliability_settings.VAR_DIR),
        "LETHE_ARTIFACT_ROOT": str(_artifact_root),
        "LETHE_DEVICE": "cpu",
        "LETHE_HEARTBEAT_SECONDS": "0.5",
        "LETHE_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }


@pytest.fixture
def unlearning_inputs(reliability_settings, project, user, tiny_model_dir):
    model = services.model_create(project=project, name="tiny", actor=user)
    checkpoint = services.checkpoint_register_directory(model=model, directory=tiny_model_dir, actor=user, kind="full", message="tiny base")
    dataset = services.dataset_create(project=project, name="harmful-forget", actor=user)
    forget = services.dataset_version_create(dataset=dataset, rows=FORGET_ROWS, actor=user)
    return {"checkpoint": checkpoint, "forget": forget}


def kill_process_group(process):
    """kill -9 of a process and everything it started, as when a machine is lost."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def start_lethe_process(args, *, env, log_path):
    log = open(log_path, "wb")
    try:
        return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()  # the child holds its own descriptor


def blobs_in_storage(artifact_root) -> set[str]:
    return {path.name for path in (Path(artifact_root) / "blobs").rglob("*") if path.is_file()}


def unreferenced_blobs() -> set[str]:
    """Blob rows that no checkpoint file, dataset version or case image names."""
    from evals.models import Case
    from versions.models import Blob, CheckpointFile, DatasetVersion

    referenced = set(CheckpointFile.objects.values_list("blob_id", flat=True))
    referenced |= set(DatasetVersion.objects.values_list("blob_id", flat=True))
    referenced |= set(Case.objects.exclude(image_blob=None).values_list("image_blob_id", flat=True))
    return set(Blob.objects.values_list("sha256", flat=True)) - referenced


@pytest.fixture
def unlearning_worker(redis_broker, background, reliability_settings, subprocess_env, tmp_path):  # noqa: F811 (the fixture)
    """`celery -A config worker -Q <private queue> -c 1` on this test's database and Redis DB."""
    queue = f"lethe-test-reliability-{uuid.uuid4().hex[:12]}"
    reliability_settings.LETHE_EXECUTOR = "celery"
    reliability_settings.CELERY_BROKER_URL = redis_broker
    reliability_settings.CELERY_TASK_DEFAULT_QUEUE = queue
    worker = CeleryWorker(queue=queue, log_path=tmp_path / "worker.log", env={**subprocess_env, "CELERY_BROKER_URL": redis_broker})
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
        import redis

        redis.Redis.from_url(redis_broker).delete(queue)
