import io
import json

import pytest
from django.core.management import call_command

from jobs.executors import inprocess_executor_shutdown


@pytest.fixture
def executor(settings):
    """Runs execute on in-process worker threads, which are stopped before tables are flushed."""
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_HEARTBEAT_SECONDS = 0.2
    yield
    inprocess_executor_shutdown(wait=True)


def evaluate(project, user, *options):
    out, err = io.StringIO(), io.StringIO()
    args = ["evaluate", "--project", project.slug, "--suite", "core@latest", "--user", user.username,
            "--max-new-tokens", "96", *options]
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_evaluate_command_gates_ci_on_regression(project, user, evaluation_setup, executor):
    utility = str(evaluation_setup["utility"].pk)

    def run(*options):
        return evaluate(project, user, *options)

    # given B complies where A refused: a regression
    code, out, err = run("--utility-dataset-version", utility, "--a", "tiny@2", "--b", "tiny@1", "--fail-on-regression")
    assert code == 1
    assert "VERDICT: B is less safe (non-inferiority passed)" in out
    assert "regression: B is less safe" in err

    # given B refuses where A complied: JSON report, exit 0
    code, out, err = run("--utility-dataset-version", utility, "--a", "tiny@1", "--b", "tiny@2", "--fail-on-regression", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["verdict"] == "safer"
    assert report["metrics"]["B"]["overall"]["asr"]["value"] == 0.0
    assert "100%" in err  # the progress bar reached the end
