"""The main job end to end, with the default tiny model built once per session."""

import io

import pytest

from demo.services import DEMO_PROJECT, DemoConfig, DemoRefused, demo_run
from evals.serializers import evaluation_detail
from jobs.executors import inprocess_executor_shutdown
from versions import selectors, services
from versions.models import Checkpoint, LabelEvent, Project
from versions.promotion import label_events_with_evidence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_DEVICE = "cpu"
    yield settings
    inprocess_executor_shutdown(wait=True)


def test_demo_unlearns_evaluates_promotes_and_rolls_back(demo_settings):
    out = io.StringIO()

    # the demo as `manage.py demo` runs it: its own tiny model, trained on the starter answers too
    outcome = demo_run(config=DemoConfig(), out=out)

    project = Project.objects.get(slug=DEMO_PROJECT)
    assert project.is_demo
    base, unlearned = outcome.base, outcome.unlearned
    assert (base.number, unlearned.number) == (1, 2)
    assert [(c.number, depth) for c, depth in selectors.checkpoint_ancestors(checkpoint=unlearned)] == [(1, 1)]
    edge = unlearned.parent_edges.get()
    assert (edge.relation, edge.method) == ("unlearned-from", "yao")
    assert outcome.evaluation.verdict == "safer"
    # B still answers every benign look-alike, and 105 pairs are enough to show it at a 5-point margin
    assert outcome.evaluation.passes_non_inferiority is True
    benign = outcome.evaluation.metrics["B"]["overall"]["counts_by_expected"]["comply"]
    assert (benign["complied"], benign["over_refusal"], benign["non_answer"], benign["error"]) == (105, 0, 0, 0)
    actions = [event.action for event in LabelEvent.objects.filter(label__model=base.model, label__name="production").order_by("id")]
    # the return to the unlearned checkpoint, which held production before, is a rollback too
    assert actions == ["create", "promote", "rollback", "rollback"]
    # the evidence a move cites is kept by the evaluation app; the registry reads it beside the event
    promotion = label_events_with_evidence(LabelEvent.objects.filter(label__model=base.model, action="promote")).first()
    assert promotion.evaluation_id == outcome.evaluation.pk
    assert selectors.label_resolve(project=project, ref=f"{base.model.name}@production") == unlearned
    printed = out.getvalue()
    assert "McNemar exact p" in printed and "rollback" in printed
    # the one decision line (as on the report page and in the API), with the gate's answer: the
    # demo project does not gate production, and the evidence would pass it
    # (printed while A held production; after the drill production is on B, so the report's line
    # now has no label to move, with the same verdict before the gate's part)
    decision = [line for line in printed.splitlines() if line.startswith("DECISION: ")]
    assert len(decision) == 1
    verdict_part, gate_part = decision[0].removeprefix("DECISION: ").split(" -> promotion gate: ")
    assert verdict_part.startswith("Safer on attacks (")
    assert gate_part == "production: not gated, evidence would PASS"
    assert evaluation_detail(outcome.evaluation)["decision"] == f"{verdict_part} -> promotion gate: no label to move"

    # Running it again reuses everything: no new checkpoints, runs or label events.
    counts = (Checkpoint.objects.count(), LabelEvent.objects.count(), project.runs.count())
    demo_run(config=DemoConfig(), out=io.StringIO())
    assert (Checkpoint.objects.count(), LabelEvent.objects.count(), project.runs.count()) == counts


def test_demo_never_touches_a_project_that_is_not_the_demo(demo_settings, user):
    services.project_create(slug=DEMO_PROJECT, name="Somebody's real project", creator=user)

    with pytest.raises(DemoRefused, match="is not the demo's"):
        demo_run(config=DemoConfig(), out=io.StringIO(), reset=True)

    assert Project.objects.get(slug=DEMO_PROJECT).name == "Somebody's real project"


def test_demo_endpoint_serves_the_unlearned_checkpoint_and_it_answers_as_in_process(demo_settings, tiny_model_dir):
    from demo.endpoint import endpoint_demo_run
    from demo.services import demo_user

    demo_settings.LETHE_ENDPOINTS = {}
    outcome = demo_run(config=DemoConfig(base_model_dir=tiny_model_dir, max_new_tokens=16), out=io.StringIO())
    out = io.StringIO()

    evaluation = endpoint_demo_run(project=outcome.project, user=demo_user(), served=outcome.unlearned, out=out, max_new_tokens=16)

    endpoint = evaluation.checkpoint_b
    assert (endpoint.kind, endpoint.number, endpoint.endpoint["profile"]) == ("endpoint", 3, "demo-serve")
    assert list(endpoint.parent_edges.values_list("parent__number", "relation")) == [(2, "served-from")]
    assert evaluation.verdict == "no significant difference"
    cases = evaluation.case_results.count()
    printed = out.getvalue()
    assert f"identical responses: {cases}/{cases} cases" in printed
    assert "VERDICT: endpoint (B) versus in-process (A): no significant difference" in printed
    # Served under its portable name, which is what the server lists as answering.
    assert "tiny-assistant@3: endpoint demo-serve, model tiny-assistant@2, served-from tiny-assistant@2" in printed
    assert "  answered by: /v1/models [tiny-assistant@2], server: uvicorn" in printed
    assert evaluation.endpoint_fingerprints["B"]["model_listed"] is True
    print(printed)
