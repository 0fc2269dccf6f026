"""API: prompts, prompt versions, diff, render, tags, labels with history, resolve."""

import urllib.parse

import pytest

from versions import services
from versions.models import AuditEvent, LabelEvent, PromptVersion, Role

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/safety/prompts"


@pytest.fixture
def prompt(project, user):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    services.prompt_version_commit(prompt=prompt, template="You are {{ role }}.\nBe safe.\n", actor=user, message="init")
    services.prompt_version_commit(prompt=prompt, template="You are {{ role }} for {{ team }}.\nBe safe.\n", actor=user, model_params={"temperature": 0})
    return prompt


def test_create_prompt_then_commit_and_read_a_version(project, api_client):
    created = api_client.post(f"{BASE}/", {"name": "greeter", "description": "first contact"})
    committed = api_client.post(f"{BASE}/greeter/versions/", {"template": "Hello {{ name }}", "model_params": {"top_p": 0.9}, "message": "v1"}, format="json")
    read = api_client.get(f"{BASE}/greeter/versions/1/")

    assert created.status_code == 201
    assert {k: created.json()[k] for k in ("name", "description", "version_count", "labels", "created_by")} == {
        "name": "greeter",
        "description": "first contact",
        "version_count": 0,
        "labels": [],
        "created_by": "alice",
    }
    assert committed.status_code == 201
    body = read.json()
    del body["created_at"]
    assert body == {
        "number": 1,
        "template": "Hello {{ name }}",
        "variables": ["name"],
        "model_params": {"top_p": 0.9},
        "message": "v1",
        "author": "alice",
        "parent": None,
        "sha256": PromptVersion.objects.get().sha256,
        "labels": [],
        "tags": [],
    }


def test_a_commit_can_carry_tags(prompt, api_client):
    committed = api_client.post(f"{BASE}/system/versions/", {"template": "Hi", "tags": ["reviewed", "canary"]}, format="json")
    refused = api_client.post(f"{BASE}/system/versions/", {"template": "Hi again", "tags": [" reviewed"]}, format="json")

    assert committed.status_code == 201 and committed.json()["tags"] == ["canary", "reviewed"]
    assert api_client.get(f"{BASE}/system/versions/?tag=canary").json()["results"][0]["number"] == 3
    assert refused.status_code == 400 and PromptVersion.objects.filter(prompt=prompt).count() == 3


def test_identical_commit_is_409_and_empty_template_is_400(prompt, api_client):
    same = api_client.post(f"{BASE}/system/versions/", {"template": "You are {{ role }} for {{ team }}.\nBe safe.\n", "model_params": {"temperature": 0}}, format="json")
    empty = api_client.post(f"{BASE}/system/versions/", {"template": ""}, format="json")

    assert same.status_code == 409
    assert same.json()["error"]["message"] == "Nothing to commit: the content is identical to the head, version 2 of system."
    assert empty.status_code == 400 and empty.json()["error"]["fields"] == {"template": ["This field may not be blank."]}


def test_wrong_content_type_is_415(prompt, api_client):
    response = api_client.post(f"{BASE}/system/versions/", "template=x", content_type="text/plain")

    assert response.status_code == 415
    assert response.json() == {"error": {"code": "unsupported_media_type", "message": 'Unsupported media type "text/plain" in request.', "fields": {}}}


def test_versions_list_newest_first_with_parent(prompt, api_client):
    body = api_client.get(f"{BASE}/system/versions/").json()

    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [(v["number"], v["parent"], v["variables"]) for v in body["results"]] == [(2, 1, ["role", "team"]), (1, None, ["role"])]


def test_diff_between_two_versions(prompt, api_client):
    response = api_client.get(f"{BASE}/system/diff/?old=1&new=2")

    assert response.status_code == 200
    assert response.json()["unified"] == ("--- system@v1\n+++ system@v2\n@@ -1,2 +1,2 @@\n-You are {{ role }}.\n+You are {{ role }} for {{ team }}.\n Be safe.\n")
    assert response.json()["side_by_side"][0] == {"op": "replace", "old_line": 1, "old": "You are {{ role }}.", "new_line": 1, "new": "You are {{ role }} for {{ team }}."}
    assert response.json()["identical"] is False


def test_diff_needs_both_numbers(prompt, api_client):
    response = api_client.get(f"{BASE}/system/diff/?old=1")

    assert response.status_code == 400 and response.json()["error"]["fields"] == {"new": ["This field is required."]}


def test_render_fills_variables_and_names_missing_ones(prompt, project, make_user, client_for):
    viewer = client_for(make_user("vera", role=Role.VIEWER, project=project))

    rendered = viewer.post(f"{BASE}/system/versions/2/render/", {"variables": {"role": "a helper", "team": "safety"}}, format="json")
    missing = viewer.post(f"{BASE}/system/versions/2/render/", {"variables": {"role": "a helper"}}, format="json")

    assert rendered.json() == {"text": "You are a helper for safety.\nBe safe.\n"}
    assert missing.status_code == 400
    assert missing.json()["error"] == {"code": "invalid", "message": "Cannot render system@v2: missing variable: team.", "fields": {"team": ["Missing variable."]}}


def test_tags_add_and_remove_on_a_version(prompt, api_client):
    tag = "asr<5%@starter-v1"
    added = api_client.post(f"{BASE}/system/versions/2/tags/", {"name": tag})
    shown = api_client.get(f"{BASE}/system/versions/2/").json()["tags"]
    removed = api_client.delete(f"{BASE}/system/versions/2/tags/{urllib.parse.quote(tag, safe='')}/")
    missing = api_client.delete(f"{BASE}/system/versions/2/tags/{urllib.parse.quote(tag, safe='')}/")

    assert added.status_code == 201 and added.json()["name"] == tag
    assert shown == [tag]
    assert removed.status_code == 204
    assert missing.status_code == 404 and missing.json()["error"]["message"] == f"system@v2 has no tag {tag!r}."


def test_label_create_promote_rollback_history_and_resolve(prompt, api_client):
    created = api_client.put(f"{BASE}/system/labels/production/", {"version": 1, "reason": "first"}, format="json")
    promoted = api_client.put(f"{BASE}/system/labels/production/", {"version": 2, "reason": "better"}, format="json")
    rolled_back = api_client.put(f"{BASE}/system/labels/production/", {"version": 1, "reason": "regression"}, format="json")

    assert (created.status_code, promoted.status_code, rolled_back.status_code) == (201, 200, 200)
    assert {k: rolled_back.json()[k] for k in ("action", "actor", "from_number", "to_number", "reason", "evaluation")} == {
        "action": "rollback",
        "actor": "alice",
        "from_number": 2,
        "to_number": 1,
        "reason": "regression",
        "evaluation": None,
    }
    label = api_client.get(f"{BASE}/system/labels/production/").json()
    assert {k: label[k] for k in ("name", "owner_kind", "owner", "number", "is_branch")} == {
        "name": "production",
        "owner_kind": "prompt",
        "owner": "system",
        "number": 1,
        "is_branch": False,
    }
    history = api_client.get(f"{BASE}/system/labels/production/history/?page_size=2").json()
    assert history["count"] == 3 and history["next"].endswith("page=2&page_size=2")
    assert [(e["action"], e["from_number"], e["to_number"]) for e in history["results"]] == [("rollback", 2, 1), ("promote", 1, 2)]
    # each move answered its event exactly as the history shows it, with the move's impact beside it
    answers = [rolled_back.json(), promoted.json()]
    assert history["results"] == [{key: value for key, value in answer.items() if key != "impact"} for answer in answers]
    assert [answer["impact"]["summary"] for answer in answers] == ["production: v2 -> v1 (rollback)", "production: v1 -> v2 (promotion)"]
    listed = api_client.get(f"{BASE}/system/labels/").json()["results"]
    assert [(item["name"], item["number"]) for item in listed] == [("production", 1)]
    resolved = api_client.get("/api/v1/projects/safety/resolve/?ref=system@production&kind=prompt").json()
    assert resolved == {"kind": "prompt_version", "name": "system", "number": 1, "sha256": PromptVersion.objects.get(number=1).sha256}
    assert api_client.get(f"{BASE}/system/").json()["labels"] == [{"name": "production", "number": 1}]


def test_protected_label_needs_the_protected_role(prompt, project, make_user, client_for):
    editor = client_for(make_user("ed", role=Role.EDITOR, project=project))

    staging = editor.put(f"{BASE}/system/labels/staging/", {"version": 2}, format="json")
    production = editor.put(f"{BASE}/system/labels/production/", {"version": 2}, format="json")

    assert staging.status_code == 201
    assert production.status_code == 403
    assert production.json()["error"]["message"] == "Moving 'production' needs the reviewer role; you are editor."
    assert LabelEvent.objects.count() == 1 and AuditEvent.objects.filter(action="label.move").count() == 1


def test_resolve_errors(prompt, api_client):
    malformed = api_client.get("/api/v1/projects/safety/resolve/?ref=system")
    unknown = api_client.get("/api/v1/projects/safety/resolve/?ref=system@canary")

    assert malformed.status_code == 400
    assert malformed.json()["error"]["message"] == "Malformed reference 'system': expected name@label or name@number."
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "Prompt 'system' has no label 'canary'."


def test_no_delete_route_for_versions(prompt, api_client):
    assert api_client.delete(f"{BASE}/system/versions/1/").status_code == 405
    assert PromptVersion.objects.count() == 2


@pytest.mark.parametrize("rows", [3, 30])
def test_prompt_lists_do_not_grow_in_queries(project, user, api_client, rows, django_assert_num_queries):
    for n in range(rows):
        prompt = services.prompt_create(project=project, name=f"p{n}", actor=user)
        version = services.prompt_version_commit(prompt=prompt, template=f"t{n}", actor=user)
        services.label_move(name="production", actor=user, prompt_version=version)
        services.tag_add(name="reviewed", prompt_version=version, actor=user)
    hot = services.prompt_create(project=project, name="hot", actor=user)
    for n in range(rows):
        services.label_move(name="staging", actor=user, prompt_version=services.prompt_version_commit(prompt=hot, template=f"v{n}", actor=user))
        services.tag_add(name=f"t{n}", prompt_version=hot.versions.get(number=n + 1), actor=user)

    with django_assert_num_queries(4):  # project and role, count, page, labels
        assert api_client.get(f"{BASE}/?page_size=100").json()["count"] == rows + 1
    with django_assert_num_queries(4):  # project and role, prompt, page (by number: no count), labels and tags in one
        assert api_client.get(f"{BASE}/hot/versions/?page_size=100").json()["count"] == rows
    with django_assert_num_queries(5):  # project and role, prompt, label, count, page
        assert api_client.get(f"{BASE}/hot/labels/staging/history/?page_size=100").json()["count"] == rows


def test_a_commit_answers_the_version_exactly_as_reading_it_back_does(prompt, api_client):
    # when v3 is committed on v1 with parameters and tags (answered from the new instance, not re-read)
    committed = api_client.post(
        f"{BASE}/system/versions/",
        {"template": "You are {{ role }}.\nBe brief.\n", "parent": 1, "model_params": {"temperature": 0.2}, "message": "shorter", "tags": ["reviewed", "a-first"]},
        format="json",
    )

    # then its body is the one a later read gives, field for field
    assert committed.status_code == 201
    read_back = api_client.get(f"{BASE}/system/versions/3/").json()
    assert committed.json() == read_back
    assert (read_back["parent"], read_back["tags"], read_back["variables"], read_back["author"]) == (1, ["a-first", "reviewed"], ["role"], "alice")
