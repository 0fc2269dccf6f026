"""The decision at the moment of decision: one line (verdict, non-inferiority, the promotion
gate's answer) on the report, the dashboard, the evaluation list and the API; Promote B links;
findings in words."""

import pytest
from django.utils.html import escape

from evals.gate import promotion_gate_check
from evals.reporting import decision_line, findings
from tests.web import builders
from versions.models import Role


@pytest.fixture
def finished(lethe_var, project, user, tiny_pair):
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    return {**setup, "evaluation": builders.evaluation_finished(project=project, actor=user, setup=setup)}


def _expected_line(project, finished):
    evaluation = finished["evaluation"]
    failures = promotion_gate_check(project=project, label_name="production", current=finished["complier"], target=finished["refuser"], evaluation=evaluation)
    gated = project.label_is_protected("production") and project.require_evaluation_for_promotion
    gate = [{"label": "production", "gated": gated, "passes": not failures, "failures": failures}]
    return decision_line(verdict=evaluation.verdict, statistics=evaluation.statistics, gate=gate)


@pytest.mark.django_db
def test_report_dashboard_list_and_api_show_the_same_decision_line(web, api_client, project, finished):
    # given a finished evaluation of the production checkpoint (A, complies) against the refuser (B)
    evaluation = finished["evaluation"]
    line = _expected_line(project, finished)
    assert line.startswith("Safer on attacks (-100.0 pts, p = ")
    assert " -> promotion gate: production: " in line

    # when the report, the dashboard, the list and the API are read
    report = web.get(f"/p/safety/evaluations/{evaluation.pk}/")
    dashboard = web.get("/p/safety/").content.decode()
    listing = web.get("/p/safety/evaluations/").content.decode()
    api_list = api_client.get("/api/v1/projects/safety/evaluations/").json()
    api_detail = api_client.get(f"/api/v1/projects/safety/evaluations/{evaluation.pk}/").json()

    # then each shows the same line
    assert report.context["decision"] == line
    assert f'<p class="decision" id="decision"><strong>Decision:</strong> {escape(line)}</p>' in report.content.decode()
    assert f'<td class="decision">{escape(line)}</td>' in dashboard
    assert f'<td class="decision">{escape(line)}</td>' in listing
    assert api_list["results"][0]["decision"] == line
    assert api_detail["decision"] == line
    assert [answer["label"] for answer in api_detail["promotion_gate"]] == ["production"]
    assert api_detail["findings"] == findings(evaluation.metrics)
    assert api_detail["findings"][0].startswith("family direct: 100% [")


@pytest.mark.django_db
def test_promote_b_links_carry_target_and_evaluation_for_those_who_may_move_labels(web, client_as, make_user, project, finished):
    # given the finished evaluation; arm A's checkpoint holds production
    evaluation = finished["evaluation"]
    viewer = make_user("victor", role=Role.VIEWER, project=project)

    # when alice (admin) opens the report
    html = web.get(f"/p/safety/evaluations/{evaluation.pk}/").content.decode()

    # then there is a Promote B link for production, with B's number and this evaluation, and the gate's answer next to it
    href = f"/p/safety/models/tiny/labels/production/?target={finished['refuser'].number}&amp;evaluation={evaluation.pk}"
    assert f'href="{href}">Promote B to production…</a>' in html
    answer = (
        "PASS" if not promotion_gate_check(project=project, label_name="production", current=finished["complier"], target=finished["refuser"], evaluation=evaluation) else "REFUSE"
    )
    if not (project.label_is_protected("production") and project.require_evaluation_for_promotion):
        answer = f"not gated (evidence would {answer})"
    assert f'gate-answer">{answer}</strong>' in html
    # and the findings in words are next to the verdict
    assert '<div id="findings">' in html
    assert f"<li>{escape(findings(evaluation.metrics)[0])}</li>" in html

    # but a viewer sees the gate's answer without the link
    viewer_html = client_as(viewer).get(f"/p/safety/evaluations/{evaluation.pk}/").content.decode()
    assert f'gate-answer">{answer}</strong>' in viewer_html
    assert "Promote B to" not in viewer_html


@pytest.mark.django_db
def test_arm_a_without_a_label_says_so(web, project, user, finished):
    # given an evaluation whose arm A (the refuser) holds no label
    setup = {**finished, "complier": finished["refuser"], "refuser": finished["complier"]}
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)

    # when its report is opened
    response = web.get(f"/p/safety/evaluations/{evaluation.pk}/")

    # then the decision says there is no label to move, and there is no Promote B link
    assert response.context["decision"].endswith(" -> promotion gate: no label to move")
    html = response.content.decode()
    assert "there is no label to move" in html and "Promote B to" not in html


@pytest.mark.django_db
def test_the_list_and_the_api_read_decisions_in_a_constant_number_of_queries(web, api_client, project, user, finished, django_assert_max_num_queries):
    # given three finished evaluations, two of which move production (so the gate runs for each)
    builders.evaluation_finished(project=project, actor=user, setup=finished)
    reversed_arms = {**finished, "complier": finished["refuser"], "refuser": finished["complier"]}
    builders.evaluation_finished(project=project, actor=user, setup=reversed_arms)

    # when the list page, the dashboard and the API list are read, then each takes a bounded number of queries
    with django_assert_max_num_queries(14):
        listing = web.get("/p/safety/evaluations/").content.decode()
    with django_assert_max_num_queries(20):
        web.get("/p/safety/")
    with django_assert_max_num_queries(12):
        results = api_client.get("/api/v1/projects/safety/evaluations/").json()["results"]

    # and every row has its decision
    assert listing.count('<td class="decision">') == 3
    assert results[0]["decision"].endswith(" -> promotion gate: no label to move")  # newest first: the reversed arms
    assert [" -> promotion gate: production: " in result["decision"] for result in results[1:]] == [True, True]


@pytest.mark.django_db
def test_a_prompt_evaluation_offers_to_promote_the_prompt_label(web, project, user, finished):
    # given prompt versions v1 (production) and v2, evaluated on the production checkpoint in both arms
    from evals.services import evaluation_create
    from jobs.services import run_execute
    from versions import services

    prompt = services.prompt_create(project=project, name="system", actor=user)
    v1 = services.prompt_version_commit(prompt=prompt, template="You are a careful assistant.", actor=user)
    v2 = services.prompt_version_commit(prompt=prompt, template="You are a careful and safe assistant.", actor=user)
    services.label_move(name="production", actor=user, prompt_version=v1)
    evaluation = evaluation_create(
        project=project,
        suite_version=finished["suite_version"],
        checkpoint_a=finished["complier"],
        checkpoint_b=finished["complier"],
        prompt_version_a=v1,
        prompt_version_b=v2,
        actor=user,
        generation={"max_new_tokens": 24},
        statistics={"bootstrap_resamples": 200},
        judge="refusal-strings",
        enqueue=False,
    )
    assert run_execute(run_id=evaluation.run_id, worker="test").status == "succeeded"
    evaluation.refresh_from_db()
    failures = promotion_gate_check(project=project, label_name="production", current=v1, target=v2, evaluation=evaluation)

    # when its report is opened
    response = web.get(f"/p/safety/evaluations/{evaluation.pk}/")

    # then the gate's answer is for the prompt's production label, and Promote B opens that label with v2
    gated = project.label_is_protected("production") and project.require_evaluation_for_promotion
    gate = [{"label": "production", "gated": gated, "passes": not failures, "failures": failures}]
    assert response.context["decision"] == decision_line(verdict=evaluation.verdict, statistics=evaluation.statistics, gate=gate)
    href = f"/p/safety/prompts/system/labels/production/?target=2&amp;evaluation={evaluation.pk}"
    assert f'href="{href}">Promote B to production…</a>' in response.content.decode()
