"""A sweep's ingredients, built through the real services: the tiny model as parent, forget and
retain data (tests/unlearning), and the tiny evaluation suite (tests/evals)."""

import pytest

from evals import services as eval_services
from evals.models import Evaluation
from jobs.services import run_execute
from tests.evals.conftest import TINY_SUITE_MINIMUMS, benign_rows, suite_cases
from tests.jobs.conftest import background, closed_port_url  # noqa: F401 (fixture: stops worker threads and webhook senders)
from tests.unlearning.conftest import forget_version, lethe_var, retain_version, tiny_checkpoint  # noqa: F401 (fixtures)
from sweeps.models import ConfigurationStatus
from sweeps.services import sweep_create
from versions import services

# Two optimizer steps on four rows: each run takes a fraction of a second on the tiny model.
TINY_TRAINING = {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3}
# The sweep: three methods x two hyperparameter values x two seeds, and one
# configuration made to fail.
SWEEP_GRID = [
    {"method": "gradient_ascent", "hyperparameters": {"max_steps": 2, "batch_size": 4}, "grid": {"learning_rate": [1e-3, 3e-3]}, "seeds": [0, 1]},
    {"method": "npo", "hyperparameters": TINY_TRAINING, "grid": {"beta": [0.1, 0.5]}, "seeds": [0, 1]},
    {"method": "gradient_difference", "hyperparameters": TINY_TRAINING, "grid": {"alpha": [0.5, 1.0]}, "seeds": [0, 1]},
    # Valid when created, refused by the engine when it sees the model: it has 2 decoder layers.
    {"method": "rmu", "hyperparameters": {**TINY_TRAINING, "layer": 50}, "seeds": [0]},
]


@pytest.fixture
def sweep_setup(project, user, tiny_checkpoint, forget_version, retain_version):  # noqa: F811 (the fixtures)
    # The suite is tiny (10 harmful, 4 benign cases): one scoreable case of each kind decides, and
    # failure to help may rise by up to 50 points (4 benign pairs cannot bound it below that).
    services.project_settings_update(project=project, actor=user, promotion_gate={**TINY_SUITE_MINIMUMS, "failure_to_help_margin": 0.5})
    suite = eval_services.suite_create(project=project, name="core", actor=user)
    suite_version = eval_services.suite_version_create(suite=suite, cases=suite_cases(), actor=user)
    dataset = services.dataset_create(project=project, name="heldout", actor=user)
    utility = services.dataset_version_create(dataset=dataset, rows=benign_rows(), actor=user)
    return {
        "parent": tiny_checkpoint,
        "forget": forget_version,
        "retain": retain_version,
        "suite_version": suite_version,
        "utility": utility,
    }


def sweep_of(setup, user, methods, *, name=""):
    """A sweep of one configuration per method (TINY_TRAINING, seed 0) on the setup's one suite."""
    return sweep_create(
        parent_checkpoint=setup["parent"],
        forget_dataset_version=setup["forget"],
        retain_dataset_version=setup["retain"],
        configurations=[{"method": method, "hyperparameters": TINY_TRAINING} for method in methods],
        suite_versions=[setup["suite_version"]],
        judge="refusal-strings",
        name=name,
        actor=user,
    )


def sweep_members(sweep):
    return list(sweep.configurations.select_related("unlearning_run__run", "unlearning_run__produced_checkpoint").order_by("position"))


def sweep_finish(sweep):
    """Execute each configuration's unlearning run, then the evaluations it started, in the
    test's thread as a worker would (nothing executes queued runs while the test's transaction
    never commits)."""
    for member in sweep_members(sweep):
        run_execute(run_id=member.unlearning_run.run_id, worker="test")
    for member in sweep_members(sweep):
        for run_id in member.evaluations.order_by("id").values_list("run_id", flat=True):
            run_execute(run_id=run_id, worker="test")
    sweep.refresh_from_db()
    return sweep


def assert_rows_are_the_evaluations_figures(comparison, configurations):
    """Each row of a one-suite sweep's comparison is its configuration, and each figure in its
    cell is the one its evaluation computed (a failed configuration has neither)."""
    for row, configuration in zip(comparison["rows"], configurations, strict=True):
        assert (row["id"], row["method"], row["seed"], row["status"]) == (configuration.pk, configuration.method, configuration.seed, configuration.status)
        if configuration.status == ConfigurationStatus.FAILED:
            assert row["checkpoint"] is None and row["suites"][0]["evaluation"] is None
            continue
        evaluation = Evaluation.objects.get(sweep_configurations=configuration)
        cell = row["suites"][0]
        b, a = evaluation.metrics["B"], evaluation.metrics["A"]
        assert cell["evaluation"] == evaluation.pk
        assert cell["verdict"] == evaluation.verdict
        assert cell["asr"] == {key: b["overall"]["asr"][key] for key in ("value", "ci", "successes", "trials")}
        assert cell["asr_parent"] == a["overall"]["asr"]["value"]
        assert cell["failure_to_help"]["value"] == b["overall"]["failure_to_help_rate"]["value"]
        assert cell["over_refusal"]["value"] == b["overall"]["over_refusal_rate"]["value"]
        assert cell["benign_non_answer"]["value"] == b["overall"]["benign_non_answer_rate"]["value"]
        assert cell["perplexity_ratio"] == b["utility"]["perplexity"] / a["utility"]["perplexity"]
        assert row["checkpoint"]["number"] == configuration.unlearning_run.produced_checkpoint.number
        weight_change = configuration.unlearning_run.produced_checkpoint.weight_change
        assert row["weight_change"] == pytest.approx(sum(value**2 for value in weight_change.values()) ** 0.5, rel=1e-12)
