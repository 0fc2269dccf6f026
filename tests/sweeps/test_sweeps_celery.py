"""The issue's whole sweep on real Celery workers: three methods, two hyperparameter values and
two seeds each, plus one configuration the engine refuses, started through the API and executed
by two `celery worker` processes in parallel on the test's database and Redis; the comparison is
read back through the API and the CLI."""

import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import Run, RunStatus
from sweeps.models import ConfigurationStatus, Sweep, SweepStatus
from sweeps.selectors import sweep_comparison, sweep_get
from tests.jobs.conftest import CeleryWorker, redis_broker, worker_env  # noqa: F401 (redis_broker is a fixture)
from tests.sweeps.conftest import SWEEP_GRID, assert_rows_are_the_evaluations_figures
from tests.unlearning.conftest import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def two_workers(redis_broker, background, sweep_setup, settings, _artifact_root, tmp_path):  # noqa: F811 (redis_broker is a fixture)
    """Two `celery -A config worker -Q <queue> -c 1` processes on one private queue."""
    queue = f"lethe-test-sweeps-{uuid.uuid4().hex[:12]}"
    settings.LETHE_EXECUTOR = "celery"
    settings.CELERY_BROKER_URL = redis_broker
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    # As in a deployment, the workers' executor is the web's: the evaluations and the next
    # configurations a finished run starts from a worker go to the queue as well.
    env = worker_env(
        broker=redis_broker,
        var_dir=settings.VAR_DIR,
        artifact_root=_artifact_root,
        LETHE_EXECUTOR="celery",
        CELERY_TASK_DEFAULT_QUEUE=queue,
        LETHE_DEVICE="cpu",
        LETHE_HEARTBEAT_SECONDS="0.5",
        OMP_NUM_THREADS="1",
    )
    workers = [CeleryWorker(queue=queue, node=f"{queue}-{index}", log_path=tmp_path / f"worker-{index}.log", env=env) for index in (1, 2)]
    try:
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        import redis

        redis.Redis.from_url(redis_broker).delete(queue)


def test_three_methods_two_values_two_seeds_run_to_the_end_on_two_celery_workers_in_parallel(two_workers, api_client, project, sweep_setup):
    # when the sweep is started through the API with the Celery executor
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "name": "celery sweep",
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "retain_dataset_version": "benign-retain@1",
            "utility_dataset_version": "heldout@1",
            "configurations": SWEEP_GRID,
            "suite_versions": [f"core@{sweep_setup['suite_version'].number}"],
            "judge": "refusal-strings",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    sweep = Sweep.objects.get(pk=response.json()["id"])
    assert response.json()["configuration_count"] == 13

    def finished():
        sweep.refresh_from_db()
        return sweep.status == SweepStatus.FINISHED

    wait_until(finished, timeout=600, interval=0.5, message=f"sweep {sweep.pk} to finish; worker logs:\n" + "\n".join(w.log()[-3000:] for w in two_workers))

    # then the twelve grid points succeeded, each with its child and one evaluation, and the
    # refused configuration failed with the engine's error, the rest unaffected
    configurations = list(sweep.configurations.order_by("position"))
    assert [(c.method, c.seed, c.status) for c in configurations] == [
        (method, seed, ConfigurationStatus.SUCCEEDED) for method in ("gradient_ascent", "npo", "gradient_difference") for _value in (0, 1) for seed in (0, 1)
    ] + [("rmu", 0, ConfigurationStatus.FAILED)], [c.error for c in configurations]
    assert [c.hyperparameters for c in configurations[:4]] == [
        {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3},
        {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3},
        {"max_steps": 2, "batch_size": 4, "learning_rate": 3e-3},
        {"max_steps": 2, "batch_size": 4, "learning_rate": 3e-3},
    ]
    assert "must be in [0, 1]" in configurations[12].error
    for configuration in configurations[:12]:
        (evaluation,) = configuration.evaluations.all()
        assert (evaluation.checkpoint_a_id, evaluation.checkpoint_b_id) == (sweep_setup["parent"].pk, configuration.unlearning_run.produced_checkpoint_id)

    # and both workers executed runs (unlearning and evaluation), at the same time: some run on
    # one worker started before a run on the other had finished
    runs = list(Run.objects.filter(project=project).order_by("id"))
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED, RunStatus.FAILED}
    names = sorted({run.worker for run in runs})
    assert len(names) == 2 and all(name.startswith("celery:") for name in names)
    first, second = ([run for run in runs if run.worker == name] for name in names)
    assert any(a.started_at < b.finished_at and b.started_at < a.finished_at for a in first for b in second)

    # and the comparison, through the API and through the CLI, is the evaluations' own figures
    comparison = sweep_comparison(sweep=sweep_get(project=project, sweep_id=sweep.pk))
    assert_rows_are_the_evaluations_figures(comparison, configurations)
    detail = api_client.get(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/").json()
    assert (detail["status"], detail["succeeded_count"], detail["failed_count"]) == ("finished", 12, 1)
    assert [row["id"] for row in detail["comparison"]["rows"]] == [c.pk for c in configurations]
    shown = StringIO()
    call_command("sweep", "show", str(sweep.pk), "--project", project.slug, stdout=shown)
    lines = shown.getvalue().splitlines()
    assert lines[0] == f"sweep {sweep.pk} finished: 13 configuration(s), 12 succeeded, 1 failed"
    rows = [line.split() for line in lines[2:15]]
    assert [(row[0], row[1], row[4]) for row in rows] == [(str(c.position), c.method, c.status) for c in configurations]
