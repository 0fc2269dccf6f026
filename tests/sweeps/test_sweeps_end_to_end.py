import json
import re

from django.test import Client

from evals.models import Evaluation
from jobs.models import RunStatus, WebhookDelivery
from jobs.webhooks import webhook_create
from sweeps.models import ConfigurationStatus, Sweep, SweepStatus
from sweeps.selectors import sweep_comparison, sweep_get
from tests.sweeps.conftest import TINY_TRAINING, assert_rows_are_the_evaluations_figures
from tests.unlearning.conftest import wait_until
from versions import services
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


def test_a_sweep_unlearns_every_configuration_evaluates_each_child_and_records_the_one_that_fails(
    background, project, user, sweep_setup, api_client, django_assert_max_num_queries, allow_loopback, closed_port_url
):
    # given a webhook for the sweep's events (nothing listens: deliveries are recorded, then fail)
    webhook_create(project=project, url=closed_port_url, events=["sweep.started", "sweep.finished"], actor=user)
    suite_ref = f"core@{sweep_setup['suite_version'].number}"

    # when a sweep of four configurations is started through the API, one of them invalid only at run time
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "name": "first sweep",
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "retain_dataset_version": "benign-retain@1",
            "utility_dataset_version": "heldout@1",
            "configurations": CONFIGURATIONS,
            "suite_versions": [suite_ref],
            "judge": "refusal-strings",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["status"], created["configuration_count"], created["name"]) == ("running", 4, "first sweep")
    assert [row["method"] for row in created["comparison"]["rows"]] == ["gradient_ascent", "npo", "gradient_difference", "rmu"]
    sweep = Sweep.objects.get(pk=created["id"])
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
        f"sweep-{sweep.pk}-1-gradient_ascent",
        f"sweep-{sweep.pk}-2-npo",
        f"sweep-{sweep.pk}-3-gradient_difference",
        f"sweep-{sweep.pk}-4-rmu",
    ]
    assert sweep.finished_at is not None

    # and the audit trail and the webhooks say when it started and finished
    actions = list(AuditEvent.objects.filter(object_type="sweep", object_id=str(sweep.pk)).order_by("id").values_list("action", "data"))
    assert actions[0] == (
        "sweep.create",
        {"parent_checkpoint": sweep_setup["parent"].pk, "configurations": 4, "strategy": "grid", "suite_versions": [sweep_setup["suite_version"].pk]},
    )
    assert actions[1] == ("sweep.finish", {"configurations": {"pending": 0, "unlearning": 0, "evaluating": 0, "succeeded": 3, "failed": 1, "cancelled": 0, "skipped": 0}})
    deliveries = list(WebhookDelivery.objects.order_by("id").values_list("event", "payload"))
    assert [event for event, _ in deliveries] == ["sweep.started", "sweep.finished"]
    assert deliveries[0][1]["sweep"]["status"] == "running"
    assert deliveries[1][1]["sweep"]["configurations"] == {"pending": 0, "unlearning": 0, "evaluating": 0, "succeeded": 3, "failed": 1, "cancelled": 0, "skipped": 0}

    # and the comparison's figures are the evaluations' own
    comparison = sweep_comparison(sweep=sweep_get(project=project, sweep_id=sweep.pk))
    assert comparison["suites"] == [f"core@{sweep_setup['suite_version'].number}"]
    assert_rows_are_the_evaluations_figures(comparison, configurations)
    # two steps leave the tiny model's answers as they were: three equal points, all on the frontier,
    # each the best of its method, and each passes the gate (no less safe, and helps as well)
    ids = [configuration.pk for configuration in configurations]
    assert comparison["frontier"] == [ids[:3]]
    # but they move its weights a little, so perplexity differs: at equal ASR, the utility frontier
    # is the configurations of least perplexity ratio
    ratios = [row["suites"][0]["perplexity_ratio"] for row in comparison["rows"][:3]]
    least = [configuration_id for configuration_id, ratio in zip(ids[:3], ratios, strict=True) if ratio == min(ratios)]
    assert comparison["utility_frontier"] == [least]
    assert [(row["suites"][0]["on_frontier"], row["suites"][0]["on_utility_frontier"]) for row in comparison["rows"]] == [
        (True, configuration_id in least) for configuration_id in ids[:3]
    ] + [(False, False)]
    assert comparison["best_per_method"] == [{"gradient_ascent": ids[0], "npo": ids[1], "gradient_difference": ids[2]}]
    assert [(row["suites"][0]["gate_passes"], row["suites"][0]["gate_failures"]) for row in comparison["rows"]] == [(True, [])] * 3 + [(None, [])]
    assert [(group["method"], group["configurations"], group["suites"][0]["asr"]["n"]) for group in comparison["groups"]] == [
        ("gradient_ascent", ids[:1], 1),
        ("npo", ids[1:2], 1),
        ("gradient_difference", ids[2:3], 1),
        ("rmu", ids[3:], 0),
    ]

    # and the API's detail is that comparison, read in a bounded number of queries
    with django_assert_max_num_queries(14):
        detail = api_client.get(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/")
    assert detail.status_code == 200
    assert detail.json()["comparison"] == json.loads(json.dumps(comparison))
    assert (detail.json()["status"], detail.json()["succeeded_count"], detail.json()["failed_count"]) == ("finished", 3, 1)
    listed = api_client.get(f"/api/v1/projects/{project.slug}/sweeps/").json()
    assert [(item["id"], item["status"], item["configuration_count"]) for item in listed["results"]] == [(sweep.pk, "finished", 4)]

    # and the page shows every row with links to its checkpoint, evaluation and a Promote link, and the chart's JSON
    web = Client()
    web.force_login(user)
    page = web.get(f"/p/{project.slug}/sweeps/{sweep.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    # no inline script: every script is a file or JSON data (the Content-Security-Policy allows nothing else)
    assert all("src=" in tag or 'type="application/json"' in tag for tag in re.findall(r"<script[^>]*>", html))
    figure = json.loads(re.search(r'<script id="pareto-0" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [trace["name"] for trace in figure["data"]] == ["gradient_ascent", "gradient_difference", "npo", "Pareto frontier"]
    utility_figure = json.loads(re.search(r'<script id="pareto-utility-0" type="application/json">(.*?)</script>', html, re.S).group(1))
    frontier_trace = utility_figure["data"][-1]
    assert frontier_trace["y"] == [row["suites"][0]["perplexity_ratio"] for row in comparison["rows"][:3] if row["id"] in least]
    for row in comparison["rows"][:3]:
        cell = row["suites"][0]
        number = row["checkpoint"]["number"]
        assert f'href="/p/{project.slug}/models/tiny/c/{number}/"' in html
        assert f'href="/p/{project.slug}/evaluations/{cell["evaluation"]}/"' in html
        assert f'href="/p/{project.slug}/models/tiny/labels/production/?target={number}&amp;evaluation={cell["evaluation"]}"' in html
    summary_table = re.search(r'<table id="method-summary">(.*?)</table>', html, re.S).group(1)
    assert [cells[:2] for cells in (re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", summary_table, re.S)) if cells] == [
        ["gradient_ascent", "#1"],
        ["npo", "#2"],
        ["gradient_difference", "#3"],
        ["rmu", "—"],
    ]
    assert configurations[3].error in html.replace("&#x27;", "'")
    assert web.get(f"/p/{project.slug}/sweeps/").status_code == 200

    # and promoting a row's checkpoint over the parent passes through the gate exactly as its row says
    services.project_settings_update(project=project, actor=user, require_evaluation_for_promotion=True)
    services.label_move(name="production", actor=user, checkpoint=sweep_setup["parent"], reason="base")
    row = comparison["rows"][0]
    evaluation = Evaluation.objects.get(pk=row["suites"][0]["evaluation"])
    child = evaluation.checkpoint_b
    services.label_move(name="production", actor=user, checkpoint=child, reason="sweep winner", evaluation=evaluation)
    assert Label.objects.get(model=child.model, name="production").checkpoint_id == child.pk
