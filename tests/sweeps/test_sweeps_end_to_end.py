import pytest

from evals.models import Evaluation
from jobs.models import RunStatus, Webhook, WebhookDelivery
from sweeps.models import ConfigurationStatus, Sweep, SweepStatus
from sweeps.selectors import sweep_comparison, sweep_get
from sweeps.services import sweep_create
from tests.sweeps.conftest import TINY_TRAINING
from tests.unlearning.conftest import wait_until
from versions.models import AuditEvent, Label

CONFIGURATIONS = [
    {"method": "gradient_ascent", "hyperparameters": TINY_TRAINING, "seeds": [0]},
    {"method": "npo", "hyperparameters": TINY_TRAINING, "seeds": [0]},
    {"method": "gradient_difference", "hyperparameters": TINY_TRAINING, "seeds": [0]},
    # Valid when created, refused by the engine when it sees the model: it has 2 decoder layers.
    {"method": "rmu", "hyperparameters": {**TINY_TRAINING, "layer": 50}, "seeds": [0]},
]


def _wait_for(sweep, timeout=300):
    def finished():
        sweep.refresh_from_db()
        return sweep.status == SweepStatus.FINISHED

    wait_until(finished, timeout=timeout, interval=0.2, message=f"sweep {sweep.pk} to finish")
    return sweep


def test_a_sweep_unlearns_every_configuration_evaluates_each_child_and_records_the_one_that_fails(background, project, user, sweep_setup):
    # given a webhook for the sweep's events
    Webhook.objects.create(project=project, url="https://hooks.example/lethe", secret="s", events=["sweep.started", "sweep.finished"],
                           created_by=user)

    # when a sweep of four configurations runs, one of them invalid only at run time
    sweep = sweep_create(
        parent_checkpoint=sweep_setup["parent"], forget_dataset_version=sweep_setup["forget"],
        retain_dataset_version=sweep_setup["retain"], utility_dataset_version=sweep_setup["utility"], configurations=CONFIGURATIONS,
        suite_versions=[sweep_setup["suite_version"]], judge="refusal-strings", actor=user, name="first sweep",
    )
    _wait_for(sweep)

    # then three configurations succeeded, each with its branch on its own child and one evaluation
    # of the child against the parent; the RMU one failed with the engine's error
    configurations = list(sweep.configurations.order_by("position"))
    assert [c.status for c in configurations] == [ConfigurationStatus.SUCCEEDED] * 3 + [ConfigurationStatus.FAILED]
    assert configurations[3].error.startswith(f"unlearning run {configurations[3].unlearning_run.run_id} failed: ")
    assert "layer" in configurations[3].error and "must be in [0, 1]" in configurations[3].error
    assert configurations[3].evaluations.count() == 0
    for configuration in configurations[:3]:
        child = configuration.unlearning_run.produced_checkpoint
        assert Label.objects.get(model=child.model, name=configuration.branch_label).checkpoint_id == child.pk
        (evaluation,) = configuration.evaluations.all()
        assert (evaluation.checkpoint_a_id, evaluation.checkpoint_b_id) == (sweep_setup["parent"].pk, child.pk)
        assert evaluation.run.status == RunStatus.SUCCEEDED
    assert [c.branch_label for c in configurations] == [
        f"sweep-{sweep.pk}-1-gradient_ascent", f"sweep-{sweep.pk}-2-npo", f"sweep-{sweep.pk}-3-gradient_difference", f"sweep-{sweep.pk}-4-rmu",
    ]
    assert sweep.finished_at is not None

    # and the audit trail and the webhooks say when it started and finished
    actions = list(AuditEvent.objects.filter(object_type="sweep", object_id=str(sweep.pk)).order_by("id").values_list("action", "data"))
    assert actions[0] == ("sweep.create", {"parent_checkpoint": sweep_setup["parent"].pk, "configurations": 4,
                                           "suite_versions": [sweep_setup["suite_version"].pk]})
    assert actions[1] == ("sweep.finish", {"configurations": {"unlearning": 0, "evaluating": 0, "succeeded": 3, "failed": 1}})
    deliveries = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload"))
    assert [event for event, _ in deliveries] == ["sweep.started", "sweep.finished"]
    assert deliveries[0][1]["sweep"]["status"] == "running"
    assert deliveries[1][1]["sweep"]["configurations"] == {"unlearning": 0, "evaluating": 0, "succeeded": 3, "failed": 1}

    # and the comparison's figures are the evaluations' own
    comparison = sweep_comparison(sweep=sweep_get(project=project, sweep_id=sweep.pk))
    assert comparison["suites"] == [f"core@{sweep_setup['suite_version'].number}"]
    for row, configuration in zip(comparison["rows"], configurations):
        assert (row["id"], row["method"], row["seed"], row["status"]) == (configuration.pk, configuration.method, 0, configuration.status)
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
    assert Sweep.objects.get(pk=sweep.pk).status == SweepStatus.FINISHED
