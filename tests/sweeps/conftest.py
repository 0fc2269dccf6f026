"""A sweep's ingredients, built through the real services: the tiny model as parent, forget and
retain data (tests/unlearning), and the tiny evaluation suite (tests/evals)."""

import pytest

from evals import services as eval_services
from tests.evals.conftest import TINY_SUITE_MINIMUMS, benign_rows, suite_cases
from tests.jobs.conftest import background, closed_port_url  # noqa: F401 (fixture: stops worker threads and webhook senders)
from tests.unlearning.conftest import forget_version, lethe_var, retain_version, tiny_checkpoint  # noqa: F401 (fixtures)
from versions import services

# Two optimizer steps on four rows: each run takes a fraction of a second on the tiny model.
TINY_TRAINING = {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3}


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
