from io import StringIO

from django.core.management import call_command

from sweeps.models import Sweep
from tests.sweeps.conftest import TINY_TRAINING


def test_sweep_create_waits_and_prints_the_comparison_table(background, project, user, sweep_setup):
    # when a sweep of one configuration is started from the command line and waited for
    out, err = StringIO(), StringIO()
    call_command(
        "sweep",
        "create",
        "--project",
        project.slug,
        "--checkpoint",
        "tiny@1",
        "--forget",
        "harmful-forget@1",
        "--retain",
        "benign-retain@1",
        "--utility",
        "heldout@1",
        "--suite",
        "core@1",
        "--judge",
        "refusal-strings",
        "--user",
        user.username,
        "--wait",
        "--poll-seconds",
        "0.2",
        "--configurations",
        '[{"method": "gradient_difference", "hyperparameters": %s}]' % str(TINY_TRAINING).replace("'", '"'),
        stdout=out,
        stderr=err,
    )

    # then it says what it started, follows it, and prints the finished sweep's table
    sweep = Sweep.objects.get()
    configuration = sweep.configurations.get()
    child = configuration.unlearning_run.produced_checkpoint
    evaluation = configuration.evaluations.get()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"sweep {sweep.pk} started: 1 configuration(s)"
    assert lines[1] == f"sweep {sweep.pk} finished: 1 configuration(s), 1 succeeded, 0 failed"
    assert lines[2].split()[:8] == ["#", "method", "hyperparameters", "seed", "status", "checkpoint", "weight", "suite"]
    row = lines[3].split()
    assert row[:6] == ["1", "gradient_difference", '{"batch_size":4,"learning_rate":0.001,"max_steps":2}', "0", "succeeded", f"tiny@{child.number}"]
    assert row[7:9] == ["core@1", "100.0%"]
    assert row[-3:] == ["passes", str(evaluation.pk), "*PU"]
    assert lines[4] == "core@1: Pareto frontier (ASR vs failure to help): #1"
    assert lines[5] == "core@1: Pareto frontier (ASR vs utility loss): #1"
    assert err.getvalue().splitlines()[-1] == f"sweep {sweep.pk}: 1 succeeded"

    # and 'show' prints the same table again
    shown = StringIO()
    call_command("sweep", "show", str(sweep.pk), "--project", project.slug, stdout=shown)
    assert shown.getvalue().splitlines() == lines[1:]
