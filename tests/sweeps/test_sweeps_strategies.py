"""Budgets and the random and Optuna strategies on the tiny model. Queued runs are executed by
hand with ``run_execute`` in the test's thread (the test's transaction never commits, so nothing
else picks them up)."""

import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.services import run_execute
from sweeps.comparison import Configuration, grid_expand
from sweeps.models import Sweep, SweepStatus
from sweeps.search import objectives_of, optuna_propose
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


def test_optuna_draws_each_trials_ranged_hyperparameters_and_learns_from_the_finished_ones(project, user, sweep_setup):
    entries = [
        {
            "method": "gradient_ascent",
            "hyperparameters": {"batch_size": 4},
            "ranges": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "max_steps": {"low": 1, "high": 3}},
        }
    ]
    # when an Optuna sweep of two trials draws its learning rate and steps from ranges
    sweep = _create(sweep_setup, user, entries, strategy="optuna", trials=2, strategy_seed=5)
    (first,) = _members(sweep)

    # then the trial holds values inside the ranges, stored as its parameters, and runs that many steps
    assert first.status == "unlearning" and set(first.search_params) == {"entry", "0.learning_rate", "0.max_steps"}
    learning_rate, max_steps = first.hyperparameters["learning_rate"], first.hyperparameters["max_steps"]
    assert 1e-4 <= learning_rate <= 1e-2 and max_steps in (1, 2, 3)
    assert (first.search_params["0.learning_rate"], first.search_params["0.max_steps"], first.planned_steps) == (learning_rate, max_steps, max_steps)

    # when it finishes
    _finish(first)

    # then the next trial is what a study rebuilt from the finished one proposes (its ranged values given back with their distributions)
    first.refresh_from_db()
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "unlearning"]
    second = members[1]
    expected = optuna_propose(entries, [(first.search_params, configuration_objectives(first))], taken={_group(first)}, seed=5)
    assert (second.method, second.hyperparameters, second.seed, second.search_params) == (
        expected.configuration.method,
        expected.configuration.hyperparameters,
        expected.configuration.seed,
        expected.params,
    )
    assert 1e-4 <= second.hyperparameters["learning_rate"] <= 1e-2 and second.hyperparameters["max_steps"] in (1, 2, 3)
    assert second.hyperparameters != first.hyperparameters and second.planned_steps == second.hyperparameters["max_steps"]
    sweep_cancel(sweep=sweep, actor=user)


def _group(member):
    return Configuration(method=member.method, hyperparameters=member.hyperparameters, seed=member.seed).group


def test_ranges_are_refused_for_the_grid_and_random_strategies(api_client, project, user, sweep_setup):
    entries = [{"method": "npo", "hyperparameters": {"max_steps": 2}, "ranges": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}}]
    for strategy, trials in (("grid", None), ("random", 1)):
        body = {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "configurations": entries,
            "suite_versions": ["core@1"],
            "strategy": strategy,
            **({"trials": trials} if trials else {}),
        }
        refused = api_client.post(f"/api/v1/projects/{project.slug}/sweeps/", body, format="json")
        assert (refused.status_code, refused.json()["error"]["message"]) == (
            400,
            "configuration 1: ranges need the optuna strategy (grid and random choose among the grid's values).",
        )
    assert not Sweep.objects.exists()
