import pytest

from tests.web import builders
from versions import services
from versions.models import Label, LabelEvent, Role


def _figure(response, figure_id):
    import json
    import re

    match = re.search(rf'<script id="{figure_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, f"no figure {figure_id} on the page"
    return json.loads(match.group(1))


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    # when
    response = client.get("/p/safety/")

    # then
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/p/safety/"


@pytest.mark.django_db
def test_signing_in_with_the_form_lands_on_the_project_list(client, project):
    # given the sign-in page with its CSRF token
    client = type(client)(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value

    # when alice signs in
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests-only", "csrfmiddlewaretoken": token}, follow=True)

    # then she sees her project
    assert response.redirect_chain == [("/", 302)]
    assert b"Safety team" in response.content


@pytest.mark.django_db
def test_a_non_member_gets_404_for_every_project_page(client_as, project, other_user, user):
    # given a prompt in a project bob is not a member of
    builders.prompt_with_versions(project=project, actor=user, count=1)
    client = client_as(other_user)

    # when / then
    for url in ("/p/safety/", "/p/safety/prompts/greeting/", "/p/safety/prompts/greeting/labels/production/", "/p/safety/evaluations/"):
        assert client.get(url).status_code == 404, url
    assert client.get("/").content.count(b"Safety team") == 0


@pytest.mark.django_db
def test_the_dashboard_shows_production_and_recent_label_moves(web, project, user):
    # given a prompt whose production label points at v2
    prompt = builders.prompt_with_versions(project=project, actor=user, count=2)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2), reason="ship it")

    # when
    response = web.get("/p/safety/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert '<a href="/p/safety/prompts/greeting/v/2/">v2</a>' in html
    assert "ship it" in html
    assert "Nothing queued or running." in html


@pytest.mark.django_db
def test_prompt_history_lists_versions_with_labels_and_tags(web, project, user):
    # given
    prompt = builders.prompt_with_versions(project=project, actor=user, count=3)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2))
    services.tag_add(name="reviewed", actor=user, prompt_version=prompt.versions.get(number=3))

    # when
    response = web.get("/p/safety/prompts/greeting/")

    # then
    html = response.content.decode()
    assert [v["number"] for v in response.context["page"]] == [3, 2, 1]
    assert '<span class="badge label">production</span>' in html
    assert '<span class="badge tag">reviewed</span>' in html
    assert "take 3" in html
    assert 'href="/p/safety/prompts/greeting/diff/?old=2&amp;new=3"' in html


@pytest.mark.django_db
def test_prompt_history_costs_the_same_queries_at_3_and_30_versions(web, project, user, django_assert_num_queries):
    # given two prompts, one short and one long (a page holds 25)
    small = builders.prompt_with_versions(project=project, actor=user, name="small", count=3)
    large = builders.prompt_with_versions(project=project, actor=user, name="large", count=30)
    for prompt in (small, large):
        for version in prompt.versions.all():
            services.tag_add(name=f"t{version.number}", actor=user, prompt_version=version)
    web.get("/p/safety/prompts/small/")  # warm the session and the role cache paths

    # when / then: the same number of queries whatever the history length
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small_queries:
        assert web.get("/p/safety/prompts/small/").status_code == 200
    with django_assert_num_queries(len(small_queries)):
        response = web.get("/p/safety/prompts/large/")
    assert len(response.context["page"]) == 25


@pytest.mark.django_db
def test_the_diff_page_shows_both_versions_side_by_side(web, project, user):
    # given
    builders.prompt_with_versions(project=project, actor=user, count=2)

    # when
    response = web.get("/p/safety/prompts/greeting/diff/?old=1&new=2")

    # then
    assert response.status_code == 200
    rows = response.context["diff"]["side_by_side"]
    assert [row["op"] for row in rows] == ["equal", "replace", "equal"]
    html = response.content.decode()
    assert '<tr class="op-replace">' in html
    # the changed line carries its +/- markers, and only the changed word is marked inside it
    assert '<td class="marker">-</td>\n        <td class="old">Hello {{ name }}, take <del>1</del>.</td>' in html
    assert '<td class="marker">+</td>\n        <td class="new">Hello {{ name }}, take <ins>2</ins>.</td>' in html


@pytest.mark.django_db
def test_the_diff_page_names_a_missing_version_next_to_its_field(web, project, user):
    # given
    builders.prompt_with_versions(project=project, actor=user, count=2)

    # when
    response = web.get("/p/safety/prompts/greeting/diff/?old=1&new=9")

    # then
    assert response.status_code == 400
    assert response.context["form"].errors == {"new": ["greeting has no version 9."]}
    assert 'id="id_new-errors"' in response.content.decode()


@pytest.mark.django_db
def test_rolling_back_a_label_shows_in_its_history_at_once(web, project, user):
    # given production released on v1, then promoted to v3
    prompt = builders.prompt_with_versions(project=project, actor=user, count=3)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=1), reason="release")
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=3), reason="better")
    url = "/p/safety/prompts/greeting/labels/production/"

    # when alice rolls it back to v1, with a reason and the confirmation
    response = web.post(url, {"target": "1", "reason": "v3 over-refuses", "confirm": "on"}, follow=True)

    # then the label moved and the history shows the rollback first
    assert response.redirect_chain == [(url, 302)]
    assert Label.objects.get(prompt=prompt, name="production").prompt_version.number == 1
    events = list(response.context["page"])
    assert [(e.action, e.to_prompt_version.number, e.reason) for e in events] == [("rollback", 1, "v3 over-refuses"), ("promote", 3, "better"), ("create", 1, "release")]
    assert "production now points at version 1 (rollback)." in response.content.decode()


@pytest.mark.django_db
def test_moving_a_label_to_an_older_version_it_never_held_is_a_promotion(web, project, user):
    # given production created on v3
    prompt = builders.prompt_with_versions(project=project, actor=user, count=3)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=3), reason="release")
    url = "/p/safety/prompts/greeting/labels/production/"

    # when alice moves it to v1, which never held it
    response = web.post(url, {"target": "1", "reason": "try the first take", "confirm": "on"}, follow=True)

    # then it is recorded as a promotion, not a rollback: the number says nothing about what held the label
    events = list(response.context["page"])
    assert [(e.action, e.to_prompt_version.number) for e in events] == [("promote", 1), ("create", 3)]
    assert "production now points at version 1 (promote)." in response.content.decode()


@pytest.mark.django_db
def test_a_label_move_needs_a_reason_and_the_confirmation(web, project, user):
    # given
    prompt = builders.prompt_with_versions(project=project, actor=user, count=2)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2))

    # when
    response = web.post("/p/safety/prompts/greeting/labels/production/", {"target": "1"})

    # then nothing moved and each missing field says so
    assert response.status_code == 400
    assert response.context["form"].errors == {"reason": ["This field is required."], "confirm": ["This field is required."]}
    assert LabelEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_editor_moving_production_sees_the_services_refusal_next_to_the_field(client_as, make_user, project, user):
    # given production on v2 and an editor (production needs a reviewer)
    prompt = builders.prompt_with_versions(project=project, actor=user, count=2)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2))
    editor = make_user("erin", role=Role.EDITOR, project=project)

    # when
    response = client_as(editor).post("/p/safety/prompts/greeting/labels/production/", {"target": "1", "reason": "r", "confirm": "on"})

    # then
    assert response.status_code == 403
    assert response.context["form"].errors == {"target": ["Moving 'production' needs the reviewer role; you are editor."]}
    assert Label.objects.get(prompt=prompt, name="production").prompt_version.number == 2


@pytest.mark.django_db
def test_a_viewer_sees_no_move_form_and_cannot_post_one(client_as, make_user, project, user):
    # given
    prompt = builders.prompt_with_versions(project=project, actor=user, count=2)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2))
    viewer = client_as(make_user("vic", role=Role.VIEWER, project=project))
    url = "/p/safety/prompts/greeting/labels/production/"

    # when
    page = viewer.get(url)
    refused = viewer.post(url, {"target": "1", "reason": "r", "confirm": "on"})

    # then
    assert page.status_code == 200
    assert b"Move label" not in page.content
    assert b'<form method="post" class="stacked"' not in page.content
    assert refused.status_code == 403
    assert Label.objects.get(prompt=prompt, name="production").prompt_version.number == 2


@pytest.mark.django_db
def test_label_moves_are_csrf_protected(project, user):
    # given a client that enforces CSRF like a browser
    from django.test import Client

    prompt = builders.prompt_with_versions(project=project, actor=user, count=2)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=2))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    # when a POST comes without the token
    response = client.post("/p/safety/prompts/greeting/labels/production/", {"target": "1", "reason": "r", "confirm": "on"})

    # then
    assert response.status_code == 403
    assert Label.objects.get(prompt=prompt, name="production").prompt_version.number == 2


def _traces_by_name(figure):
    return {trace["name"]: trace for trace in figure["data"]}


@pytest.mark.django_db
def test_the_model_page_draws_the_lineage_as_a_layered_graph_with_methods_and_badges(web, project, user, tmp_path):
    # given base #1 <- #2 <- #3, production on #2
    _, checkpoints = builders.model_with_lineage(project=project, actor=user, root=tmp_path)
    services.label_move(name="production", actor=user, checkpoint=checkpoints[1], reason="release")

    # when
    response = web.get("/p/safety/models/llm/")

    # then the checkpoints are layered left to right, each named model@number and linked to its page
    figure = _figure(response, "lineage-figure")
    traces = _traces_by_name(figure)
    assert (traces["checkpoint (full)"]["x"], traces["checkpoint (full)"]["text"]) == ([0], ["llm@1"])
    assert (traces["checkpoint (adapter)"]["x"], traces["checkpoint (adapter)"]["text"]) == ([1, 2], ["llm@2", "llm@3"])
    assert traces["checkpoint (adapter)"]["customdata"] == ["/p/safety/models/llm/c/2/", "/p/safety/models/llm/c/3/"]
    # each edge's method is written on it, and each edge ends in an arrowhead
    assert traces["methods"]["text"] == ["npo", "npo"]
    edges = traces["lineage edges"]
    assert (edges["x"], edges["marker"]["size"], edges["marker"]["angleref"]) == ([0, 1, None, 1, 2, None], [0, 11, 0, 0, 11, 0], "previous")
    # and the label is a badge over the checkpoint it points at
    assert [(a["x"], a["text"]) for a in figure["layout"]["annotations"]] == [(1, "production")]
    assert [c["number"] for c in response.context["page"]] == [3, 2, 1]
    assert '#1 <span class="muted">unlearned-from (npo)</span>' in response.content.decode()


@pytest.mark.django_db
def test_the_lineage_graph_shows_runs_datasets_and_the_latest_verdict_of_an_edge(web, project, user, lethe_var, tiny_pair, tmp_path):
    # given an evaluation between the complier (#1) and its unlearned child the refuser (#2), and an
    # adapter registered by hand as unlearned from #2 on forget@1 and retain@1
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    forget, retain = builders.forget_and_retain(project=project, actor=user)
    unlearned = builders.unlearned_adapter(parent=setup["refuser"], actor=user, forget=forget, retain=retain, root=tmp_path)

    # when
    figure = _figure(web.get("/p/safety/models/tiny/"), "lineage-figure")

    # then the edge #1 -> #2 carries the evaluation's verdict, linked to its report
    traces = _traces_by_name(figure)
    verdict = traces[f"verdict: {evaluation.verdict}"]
    assert verdict["text"] == [evaluation.verdict]
    assert verdict["customdata"] == [f"/p/safety/evaluations/{evaluation.pk}/"]
    assert verdict["hovertext"] == [f"evaluation {evaluation.pk}: tiny@2 against tiny@1: {evaluation.verdict}"]
    # and the datasets #3 forgot and retained are nodes one layer before it, linked to their pages
    datasets = traces["dataset version"]
    assert (datasets["text"], datasets["x"]) == (["forget@1", "retain@1"], [1, 1])
    assert datasets["customdata"] == ["/p/safety/datasets/forget/v/1/", "/p/safety/datasets/retain/v/1/"]
    assert traces["checkpoint (adapter)"]["x"] == [2] and unlearned.number == 3
    assert len(traces["data edges"]["marker"]["size"]) == 2 * 3


@pytest.mark.django_db
def test_the_checkpoint_page_shows_files_lineage_and_the_weight_change_chart(web, project, user, tmp_path):
    # given
    _, checkpoints = builders.model_with_lineage(project=project, actor=user, root=tmp_path)
    child = checkpoints[1]

    # when
    response = web.get("/p/safety/models/llm/c/2/")

    # then
    html = response.content.decode()
    assert [f.path for f in response.context["files"]] == ["adapter_config.json", "adapter_model.safetensors"]
    assert child.files.get(path="adapter_model.safetensors").blob.sha256 in html
    assert [e.parent.number for e in response.context["parents"]] == [1]
    assert [e.child.number for e in response.context["children"]] == [3]
    figure = _figure(response, "weight-change-figure")
    assert figure["data"][0]["y"] == ["model.layers.0.mlp.up_proj", "model.layers.0.self_attn.q_proj"]
    assert figure["data"][0]["x"] == [0.5, 0.25]
    assert "registered by hand" in html


@pytest.mark.django_db
def test_model_and_checkpoint_pages_cost_the_same_queries_at_two_sizes(web, project, user, tmp_path, django_assert_num_queries):
    # given a short and a long lineage
    builders.model_with_lineage(project=project, actor=user, root=tmp_path / "a", name="short", children=1)
    builders.model_with_lineage(project=project, actor=user, root=tmp_path / "b", name="long", children=12)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # when / then
    with CaptureQueriesContext(connection) as short_queries:
        assert web.get("/p/safety/models/short/").status_code == 200
    with django_assert_num_queries(len(short_queries)):
        assert web.get("/p/safety/models/long/").status_code == 200


@pytest.mark.django_db
def test_a_version_page_shows_its_text_variables_and_parameters(web, project, user):
    # given
    builders.prompt_with_versions(project=project, actor=user, count=2)

    # when
    response = web.get("/p/safety/prompts/greeting/v/2/")

    # then
    html = response.content.decode()
    assert response.context["version"].variables == ["name"]
    assert "<li><code>name</code></li>" in html
    assert "Hello {{ name }}, take 2." in html
    assert '<table class="kv" aria-label="Model parameters"><tbody><tr><th scope="row">temperature</th><td><code class="kv-scalar">0.2</code></td></tr></tbody></table>' in html
    assert web.get("/p/safety/prompts/greeting/v/9/").status_code == 404
