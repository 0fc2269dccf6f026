import datetime as dt
import json
import re

import pytest

from evals.models import Evaluation
from jobs.models import RunStatus
from tests.web import builders
from unlearning.models import UnlearningRun
from versions import services
from versions.models import AuditEvent, LabelEvent, Role


def _figure(response, figure_id):
    match = re.search(rf'<script id="{figure_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, f"no figure {figure_id} on the page"
    return json.loads(match.group(1))


@pytest.fixture
def finished(lethe_var, project, user, tiny_pair):
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    return {**setup, "evaluation": builders.evaluation_finished(project=project, actor=user, setup=setup)}


@pytest.mark.django_db
def test_the_report_shows_verdict_metrics_charts_and_redacted_flips(web, project, finished):
    # given a finished evaluation where B (the refuser) fixed the attacks A (the complier) fell for
    evaluation = finished["evaluation"]

    # when alice (admin) opens the report
    response = web.get(f"/p/safety/evaluations/{evaluation.pk}/")

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="verdict">{evaluation.verdict}</strong>' in html
    assert [row["title"] for row in response.context["headline_rows"]] == [
        "Attack success rate",
        "Non-answers (harmful)",
        "Failure to help",
        "Over-refusal rate",
        "Non-answers (benign)",
        "Refusal rate",
    ]
    asr = evaluation.metrics["A"]["overall"]["asr"]
    assert response.context["headline_rows"][0]["a_counts"] == f"{asr['successes']}/{asr['trials']}"
    # each paired interval names its method; the non-inferiority table shows the score interval
    assert [row["ci_method"] for row in response.context["headline_rows"]] == ["bootstrap", "", "Tango score", "", "", ""]
    failure_to_help = response.context["non_inferiority"][0]
    assert (failure_to_help["title"], failure_to_help["method"], failure_to_help["passes"]) == (
        "Failure to help (B − A)",
        "Tango score",
        evaluation.statistics["non_inferiority"][0]["passes"],
    )
    assert '<table id="non-inferiority">' in html
    # and the report's hash, with the run-dependent latencies apart
    assert f'<dd class="mono" id="report-sha256">{evaluation.report_sha256}</dd>' in html
    assert "Mean latency per case" in html
    assert 'id="inconclusive"' not in html
    category = _figure(response, "category-figure")
    assert [trace["name"] for trace in category["data"]] == ["arm A", "arm B"]
    assert category["data"][0]["x"] == ["cybercrime", "fraud", "weapons"]
    assert _figure(response, "family-figure")["data"][1]["x"] == ["direct"]
    assert "refusal-strings" in html
    flipped = list(response.context["page"])
    assert len(flipped) == evaluation.case_results.filter(flipped=True).count()


@pytest.mark.django_db
def test_an_inconclusive_report_says_why(web, project, user, lethe_var, tiny_pair):
    # given an evaluation whose project needs more harmful cases than the suite has
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup, statistics={"min_harmful_cases": 50})
    assert evaluation.verdict == "inconclusive"

    # when its report is opened
    html = web.get(f"/p/safety/evaluations/{evaluation.pk}/").content.decode()

    # then the verdict is inconclusive, with the reason
    harmful = evaluation.statistics["coverage"]["harmful_pairs"]
    assert '<strong id="verdict">inconclusive</strong>' in html
    assert re.search(r"<strong>Decision:</strong> Inconclusive: \d+ harmful cases were answered", html)
    assert 'id="inconclusive"' in html
    assert (f"<li>{harmful} harmful cases were answered by both arms without an error; at least 50 are needed (min_harmful_cases)</li>") in html


def test_the_report_shows_what_a_cascade_judge_escalated_and_the_categories_llama_guard_named(web, lethe_var, project, user, tiny_pair, llama_guard_judge_dir, llama_guard_judge):
    # given an evaluation judged by Llama Guard, with the refusal strings for the benign cases it cannot score
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(
        project=project,
        actor=user,
        setup=setup,
        judge="cascade",
        max_new_tokens=64,
        judge_config={
            "first": {"name": "causal-lm", "config": {"path": llama_guard_judge, "preset": "llama-guard-3"}},
            "second": {"name": "refusal-strings"},
        },
    )

    # when alice opens the report
    response = web.get(f"/p/safety/evaluations/{evaluation.pk}/")

    # then the judge's own report sits beside the metrics: escalations per arm and categories named
    assert response.status_code == 200
    rows = {row["title"]: (row["a"], row["b"]) for row in response.context["judge_rows"]}
    assert rows == {
        "Judged cases": ("9", "9"),
        "Uncertain judgements": ("0", "0"),
        "Escalated to the second judge": ("3 (out of scope 3)", "3 (out of scope 3)"),
        "Hazard categories named": ("S2 × 5, S9 × 1", "none"),
    }
    figure = _figure(response, "judge-categories-figure")
    assert [(trace["name"], trace["x"], trace["y"]) for trace in figure["data"]] == [
        ("arm A", ["S2 Non-Violent Crimes", "S9 Indiscriminate Weapons"], [5, 1]),
        ("arm B", ["S2 Non-Violent Crimes", "S9 Indiscriminate Weapons"], [0, 0]),
    ]
    assert 'id="judge-summary"' in response.content.decode()


@pytest.mark.django_db
def test_flipped_responses_are_redacted_below_reviewer_and_a_reveal_is_audited(client_as, make_user, project, finished):
    # given an editor and a reviewer
    evaluation = finished["evaluation"]
    assert evaluation.case_results.filter(flipped=True).exists()
    editor = client_as(make_user("erin", role=Role.EDITOR, project=project))
    reviewer_user = make_user("rita", role=Role.REVIEWER, project=project)
    reviewer = client_as(reviewer_user)
    url = f"/p/safety/evaluations/{evaluation.pk}/"
    response_text = evaluation.case_results.filter(flipped=True).first().response_a

    # when the editor asks to reveal, and the reviewer does
    editor_page = editor.get(url + "?reveal=1").content.decode()
    reviewer_plain = reviewer.get(url).content.decode()
    reviewer_revealed = reviewer.get(url + "?reveal=1").content.decode()

    # then only the reviewer's explicit reveal shows responses, and it is audited once
    assert "Responses are redacted: any response may be harmful, and reading them needs the reviewer role." in editor_page
    assert '<td class="redacted">[redacted]</td>' in editor_page
    assert "Reveal responses (audited)" in reviewer_plain
    assert '<td class="redacted">[redacted]</td>' not in reviewer_revealed
    assert response_text[:40] in reviewer_revealed
    reads = AuditEvent.objects.filter(action="hazard.read")
    assert [(e.actor.username, e.object_type, e.object_id) for e in reads] == [("rita", "evaluation", str(evaluation.pk))]
    assert reads.get().data == {"case_results": list(evaluation.case_results.filter(flipped=True).order_by("position").values_list("pk", flat=True))}


@pytest.mark.django_db
def test_safety_over_time_plots_each_checkpoint_per_evaluation_and_the_label_lanes(web, project, user, finished):
    # given the evaluation, and a promotion of the refuser after it
    services.label_move(name="production", actor=user, checkpoint=finished["refuser"], reason="safer")
    evaluation = finished["evaluation"]

    # when
    response = web.get("/p/safety/models/tiny/safety/")

    # then along the lineage: one point per checkpoint, each naming its evaluation and arm
    lineage = _figure(response, "safety-asr-lineage")
    assert [trace["name"] for trace in lineage["data"]] == ["core v1"]
    assert lineage["data"][0]["x"] == ["tiny@1", "tiny@2"]
    a, b = (evaluation.metrics[arm]["overall"]["asr"]["value"] for arm in ("A", "B"))
    assert lineage["data"][0]["y"] == [a, b]
    assert [text.split("<br>")[0] for text in lineage["data"][0]["hovertext"]] == [f"tiny@1 · evaluation {evaluation.pk} · arm A", f"tiny@2 · evaluation {evaluation.pk} · arm B"]
    # over time: the same points, and production's two intervals as a lane, no annotations
    over_time = _figure(response, "safety-asr-time")
    points, lane = over_time["data"]
    assert (points["mode"], len(points["x"])) == ("markers", 2)
    events = list(LabelEvent.objects.filter(label__name="production").order_by("id"))
    assert lane["text"] == ["tiny@1", "tiny@2"]
    assert lane["base"] == [e.created_at.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ") for e in events]
    assert "annotations" not in over_time["layout"]
    # each chart has its own accessible name, and a table holds the same data
    html = response.content.decode()
    assert 'aria-label="Attack success rate of tiny over time, with label intervals"' in html
    assert 'aria-label="Held-out perplexity (utility) of tiny along the lineage"' in html
    rows = response.context["rows"]
    assert [(r["point"].checkpoint, r["point"].arm, r["point"].evaluation_id) for r in rows] == [("tiny@1", "A", evaluation.pk), ("tiny@2", "B", evaluation.pk)]
    assert [(i.label, i.checkpoint, i.action, i.current) for i in response.context["intervals"]] == [
        ("production", "tiny@1", "create", False),
        ("production", "tiny@2", "promote", True),
    ]
    assert '<table id="label-intervals"' in html and '<table id="safety-measurements"' in html


@pytest.mark.django_db
def test_the_safety_page_costs_the_same_queries_with_more_evaluations_and_label_moves(web, project, user, finished, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as first:
        assert web.get("/p/safety/models/tiny/safety/").status_code == 200
    # given a second evaluation and more label moves
    builders.evaluation_finished(project=project, actor=user, setup=finished)
    # (the drill moves production back to the complier, measured less safe: acknowledged)
    for checkpoint in (finished["refuser"], finished["complier"], finished["refuser"]):
        services.label_move(name="production", actor=user, checkpoint=checkpoint, reason="drill", acknowledge_less_safe=True)
    services.label_move(name="staging", actor=user, checkpoint=finished["refuser"], reason="try")

    # when / then
    with django_assert_num_queries(len(first)):
        response = web.get("/p/safety/models/tiny/safety/")
    assert len(response.context["rows"]) == 4
    assert len(response.context["intervals"]) == 5


@pytest.mark.django_db
def test_starting_an_evaluation_from_the_form_queues_it(web, project, user, lethe_var, tiny_pair):
    # given
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    form = web.get(f"/p/safety/evaluations/new/?a={setup['complier'].pk}&b={setup['refuser'].pk}")
    assert form.context["form"].initial == {"checkpoint_a": str(setup["complier"].pk), "checkpoint_b": str(setup["refuser"].pk)}

    # when
    response = web.post(
        "/p/safety/evaluations/new/",
        {
            "suite_version": setup["suite_version"].pk,
            "checkpoint_a": setup["complier"].pk,
            "checkpoint_b": setup["refuser"].pk,
            "judge": "refusal-strings",
            "judge_config": "{}",
            "generation": '{"max_new_tokens": 16}',
            "seed": "3",
        },
    )

    # then
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/p/safety/evaluations/{evaluation.pk}/"
    assert (evaluation.seed, evaluation.generation_config["max_new_tokens"], evaluation.run.status) == (3, 16, RunStatus.QUEUED)
    page = web.get(response["Location"]).content.decode()
    assert f'data-poll-url="/p/safety/runs/{evaluation.run_id}/status.json"' in page


@pytest.mark.django_db
def test_the_evaluation_form_shows_a_bad_generation_setting_next_to_its_field(web, project, user, lethe_var, tiny_pair):
    # given
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)

    # when
    response = web.post(
        "/p/safety/evaluations/new/",
        {
            "suite_version": setup["suite_version"].pk,
            "checkpoint_a": setup["complier"].pk,
            "checkpoint_b": setup["refuser"].pk,
            "judge": "refusal-strings",
            "judge_config": "{}",
            "generation": '{"max_new_tokens": 0}',
            "seed": "0",
        },
    )

    # then
    assert response.status_code == 400
    assert response.context["form"].errors == {"generation": ["Invalid generation config: max_new_tokens must be in 1..4096, got 0"]}
    assert Evaluation.objects.count() == 0


@pytest.mark.django_db
def test_a_viewer_cannot_open_the_start_forms(client_as, make_user, project, user, tmp_path):
    # given
    builders.model_with_lineage(project=project, actor=user, root=tmp_path, children=0)
    viewer = client_as(make_user("vic", role=Role.VIEWER, project=project))

    # when / then
    assert viewer.get("/p/safety/evaluations/new/").status_code == 403
    assert viewer.get("/p/safety/models/llm/c/1/unlearn/").status_code == 403
    assert b"Start an unlearning run" not in viewer.get("/p/safety/models/llm/c/1/").content


@pytest.mark.django_db
def test_starting_an_unlearning_run_from_a_checkpoint_and_reading_its_progress(web, project, user, lethe_var, tiny_pair):
    # given a checkpoint and forget/retain dataset versions
    model = services.model_create(project=project, name="tiny", actor=user)
    checkpoint = services.checkpoint_register_directory(model=model, directory=tiny_pair["complier"], actor=user)
    forget = services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="forget", actor=user),
        rows=[{"prompt": p, "response": builders.placeholder_answer(p)} for _, p in builders.HARMFUL],
        actor=user,
    )
    retain = services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="retain", actor=user), rows=[{"prompt": p, "response": r} for p, r in builders.BENIGN], actor=user
    )

    # when the form is posted with a bad hyperparameter, then a good one
    url = "/p/safety/models/tiny/c/1/unlearn/"
    fields = {"method": "npo", "forget_dataset_version": forget.pk, "retain_dataset_version": retain.pk, "seed": "1", "branch_label": ""}
    refused = web.post(url, {**fields, "hyperparameters": '{"learning_rate": -1}'})
    created = web.post(url, {**fields, "hyperparameters": '{"max_steps": 2, "batch_size": 4}'})

    # then the error sits next to the hyperparameters, and the good run is queued
    assert refused.status_code == 400
    assert list(refused.context["form"].errors) == ["hyperparameters"]
    assert refused.context["form"].errors["hyperparameters"][0].startswith("Invalid hyperparameter learning_rate")
    unlearning_run = UnlearningRun.objects.get()
    assert created["Location"] == f"/p/safety/unlearning/{unlearning_run.pk}/"
    assert (unlearning_run.parent_checkpoint_id, unlearning_run.method, unlearning_run.seed) == (checkpoint.pk, "npo", 1)
    page = web.get(created["Location"]).content.decode()
    assert f'data-poll-url="/p/safety/unlearning/{unlearning_run.pk}/progress.json"' in page
    progress = web.get(f"/p/safety/unlearning/{unlearning_run.pk}/progress.json").json()
    assert progress == {
        "id": unlearning_run.run_id,
        "status": "queued",
        "progress": 0.0,
        "progress_message": "",
        "finished": False,
        "error": "",
        "figures": {"loss-figure": progress["figures"]["loss-figure"]},
    }
    assert progress["figures"]["loss-figure"]["data"] == []


@pytest.mark.django_db
def test_the_run_page_sends_each_run_to_its_own_page(web, project, user, finished):
    # given
    evaluation = finished["evaluation"]

    # when
    response = web.get(f"/p/safety/runs/{evaluation.run_id}/")
    plain = web.get(f"/p/safety/runs/{evaluation.run_id}/?plain=1")
    listing = web.get("/p/safety/runs/")

    # then
    assert response["Location"] == f"/p/safety/evaluations/{evaluation.pk}/"
    assert plain.status_code == 200 and b"verdict:" in plain.content
    assert [run.pk for run in listing.context["page"]] == [evaluation.run_id]
    assert web.get(f"/p/safety/runs/{evaluation.run_id}/status.json").json()["status"] == "succeeded"
