"""Budgets and the random and Optuna strategies on the tiny model. Queued runs are executed by
hand with ``run_execute`` in the test's thread (the test's transaction never commits, so nothing
else picks them up)."""

import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.services import run_execute
from sweeps.comparison import grid_expand
from sweeps.models import Sweep, SweepStatus
from sweeps.search import objectives_of
from sweeps.selectors import configuration_objectives
from sweeps.services import sweep_cancel, sweep_create
from tests.sweeps.conftest import TINY_TRAINING

pytestmark = pytest.mark.django_db


def _members(sweep):
    return list(sweep.configurations.select_related("unlearning_run__run").order_by("position"))


def _create(setup, user, configurations, **options):
    return sweep_create(
        parent_checkpoint=setup["parent"],
        forget_dataset_version=setup["forget"],
        retain_dataset_version=setup["retain"],
        utility_dataset_version=setup["utility"],
        configurations=configurations,
        suite_versions=[setup["suite_version"]],
        judge="refusal-strings",
        actor=user,
        **options,
    )


def _finish(member):
    """Execute a configuration's unlearning run, then its evaluation, as a worker would."""
    run_execute(run_id=member.unlearning_run.run_id, worker="test")
    (evaluation,) = member.evaluations.all()
    run_execute(run_id=evaluation.run_id, worker="test")


def test_a_training_step_budget_skips_the_configurations_it_cannot_pay_for(project, user, sweep_setup):
    # when three configurations of 2 steps each share a budget of 5 steps
    sweep = _create(sweep_setup, user, [{"method": m, "hyperparameters": TINY_TRAINING} for m in ("gradient_ascent", "npo", "kl")], budget_steps=5)

    # then two start and the third is skipped, saying why
    members = _members(sweep)
    assert [m.status for m in members] == ["unlearning", "unlearning", "skipped"]
    assert members[2].error == "skipped: the sweep's budget of 5 training steps is spent (4 used or under way, this configuration needs 2)"
    assert members[2].unlearning_run is None


def test_a_wall_time_budget_skips_what_has_not_started_when_it_is_spent(project, user, sweep_setup):
    # given a sweep of two configurations, one at a time, with a minute of wall time
    sweep = _create(sweep_setup, user, [{"method": m, "hyperparameters": TINY_TRAINING} for m in ("gradient_ascent", "npo")], parallelism=1, budget_seconds=60)
    assert [m.status for m in _members(sweep)] == ["unlearning", "pending"]
    # when the minute has passed (the sweep started two minutes ago) by the time the first finishes
    Sweep.objects.filter(pk=sweep.pk).update(started_at=timezone.now() - timedelta(minutes=2))
    _finish(_members(sweep)[0])

    # then the second never starts, and the sweep finishes with it skipped
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "skipped"]
    assert re.fullmatch(r"skipped: the sweep's wall-time budget of 60 s was spent \(1[2-9]\d s since it started\)", members[1].error)
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.FINISHED


def test_the_random_strategy_runs_the_configurations_its_seed_draws(api_client, project, user, sweep_setup):
    entries = [{"method": m, "hyperparameters": {"max_steps": 2, "batch_size": 4}, "grid": {"learning_rate": [0.001, 0.002]}} for m in ("gradient_ascent", "npo", "kl")]
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "retain_dataset_version": "benign-retain@1",
            "configurations": entries,
            "suite_versions": ["core@1"],
            "judge": "refusal-strings",
            "strategy": "random",
            "trials": 3,
            "strategy_seed": 11,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    expected = random.Random(11).sample(grid_expand(entries), 3)
    assert (body["strategy"], body["trials"], body["strategy_seed"]) == ("random", 3, 11)
    assert [(row["method"], row["hyperparameters"], row["seed"]) for row in body["comparison"]["rows"]] == [(c.method, c.hyperparameters, c.seed) for c in expected]
    refused = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "configurations": entries,
            "suite_versions": ["core@1"],
            "strategy": "random",
        },
        format="json",
    )
    assert (refused.status_code, refused.json()["error"]["message"]) == (400, "The random strategy needs trials (how many configurations).")


def test_optuna_proposes_each_trial_from_the_finished_ones_results(project, user, sweep_setup):
    entries = [
        {"method": "gradient_ascent", "hyperparameters": {"max_steps": 2, "batch_size": 4}, "grid": {"learning_rate": [0.001, 0.002]}},
        {"method": "npo", "hyperparameters": {"max_steps": 2, "batch_size": 4}, "grid": {"learning_rate": [0.001, 0.002]}},
    ]
    # when an Optuna sweep of three trials starts: one trial at a time (it learns from each)
    sweep = _create(sweep_setup, user, entries, strategy="optuna", trials=3, strategy_seed=5)
    (first,) = _members(sweep)
    assert first.status == "unlearning" and set(first.search_params) == {"entry", f"{first.search_params['entry']}.learning_rate"}

    # and the first trial finishes
    _finish(first)

    # then its objectives are its evaluation's figures, and the next trial is proposed and started
    first.refresh_from_db()
    (evaluation,) = first.evaluations.all()
    b, a = evaluation.metrics["B"], evaluation.metrics["A"]
    assert configuration_objectives(first) == objectives_of(
        [
            {
                "asr": b["overall"]["asr"]["value"],
                "failure_to_help": b["overall"]["failure_to_help_rate"]["value"],
                "perplexity_ratio": b["utility"]["perplexity"] / a["utility"]["perplexity"],
            }
        ]
    )
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "unlearning"]
    assert (members[1].method, members[1].hyperparameters) != (first.method, first.hyperparameters)
    assert members[1].search_params and members[1].planned_steps == 2

    # and cancelling it proposes nothing more
    sweep_cancel(sweep=sweep, actor=user)
    assert [m.status for m in _members(sweep)] == ["succeeded", "cancelled"]
