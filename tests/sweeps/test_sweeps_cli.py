import json
from io import StringIO

from django.core.management import call_command

from sweeps.models import ConfigurationStatus, Sweep
from sweeps.selectors import sweep_comparison, sweep_get
from tests.sweeps.conftest import SWEEP_GRID, assert_rows_are_the_evaluations_figures


def test_sweep_create_waits_and_prints_the_comparison_table(background, project, user, sweep_setup):
    # when the sweep (three methods x two values x two seeds, and one configuration the
    # engine refuses) is started from the command line, in-process, and waited for
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
        json.dumps(SWEEP_GRID),
        stdout=out,
        stderr=err,
    )

    # then it says what it started, follows it, and prints the finished sweep's table: one line
    # per configuration, the failed one with its error, each succeeded one with its evaluation
    sweep = Sweep.objects.get()
    configurations = list(sweep.configurations.order_by("position"))
    assert [c.status for c in configurations] == [ConfigurationStatus.SUCCEEDED] * 12 + [ConfigurationStatus.FAILED]
    comparison = sweep_comparison(sweep=sweep_get(project=project, sweep_id=sweep.pk))
    assert_rows_are_the_evaluations_figures(comparison, configurations)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"sweep {sweep.pk} started: 13 configuration(s)"
    assert lines[1] == f"sweep {sweep.pk} finished: 13 configuration(s), 12 succeeded, 1 failed"
    assert lines[2].split()[:8] == ["#", "method", "hyperparameters", "seed", "status", "checkpoint", "weight", "suite"]
    rows = [line.split() for line in lines[3:16]]
    assert [(row[0], row[1], row[3], row[4]) for row in rows] == [(str(c.position), c.method, str(c.seed), c.status) for c in configurations]
    assert rows[0][2] == '{"batch_size":4,"learning_rate":0.001,"max_steps":2}'
    for row, configuration in zip(rows[:12], configurations[:12], strict=True):
        evaluation = configuration.evaluations.get()
        assert row[5] == f"tiny@{configuration.unlearning_run.produced_checkpoint.number}"
        assert str(evaluation.pk) in row
    positions = {c.pk: c.position for c in configurations}
    assert lines[16] == f"configuration 13 (rmu, seed 0) failed: {configurations[12].error}"
    assert lines[17] == "core@1: Pareto frontier (ASR vs failure to help): " + ", ".join(f"#{positions[key]}" for key in comparison["frontier"][0])
    assert lines[18] == "core@1: Pareto frontier (ASR vs utility loss): " + ", ".join(f"#{positions[key]}" for key in comparison["utility_frontier"][0])
    assert lines[19] == "method comparison (best configuration of each method; ASR before -> after, pooled over suites):"
    best = {line["method"]: line["position"] for line in comparison["method_summary"]}
    assert [line.split(":")[0] for line in lines[20:]] == [f"  {method} #{best[method]}" for method in ("gradient_ascent", "npo", "gradient_difference")] + ["  rmu -"]
    assert err.getvalue().splitlines()[-1] == f"sweep {sweep.pk}: 1 failed, 12 succeeded"

    # and 'show' prints the same table again
    shown = StringIO()
    call_command("sweep", "show", str(sweep.pk), "--project", project.slug, stdout=shown)
    assert shown.getvalue().splitlines() == lines[1:]
