"""API: projects, members, tokens, audit events, and the error body shape."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from versions import services
from versions.models import ApiToken, AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db


def bearer(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_anonymous_gets_401_in_the_error_shape(project):
    response = APIClient().get("/api/v1/projects/safety/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": {"code": "not_authenticated", "message": "Authentication credentials were not provided.", "fields": {}}}


def test_token_create_list_and_revoke_refuses_the_token_at_once(user, project, api_client):
    created = api_client.post("/api/v1/tokens/", {"name": "ci"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lethe_") and created.json()["prefix"] == key[:12]
    token_id = created.json()["id"]

    listed = bearer(key).get("/api/v1/tokens/")
    assert listed.status_code == 200
    assert [(t["id"], t["name"], t["revoked_at"]) for t in listed.json()["results"]] == [(token_id, "ci", None)]
    assert "key" not in listed.json()["results"][0]
    assert bearer(key).get("/api/v1/projects/safety/").json()["slug"] == "safety"

    revoked = bearer(key).delete(f"/api/v1/tokens/{token_id}/")

    assert revoked.status_code == 204
    refused = bearer(key).get("/api/v1/projects/safety/")
    assert refused.status_code == 401
    assert refused.json()["error"] == {"code": "authentication_failed", "message": "Invalid or revoked token.", "fields": {}}
    assert ApiToken.objects.get(pk=token_id).revoked_at is not None


def test_a_token_records_its_last_use_at_most_once_a_minute_and_an_inactive_user_is_refused(user, project):
    # given a token never used, and one last used 30 s ago and another 2 minutes ago
    fresh, fresh_key = services.token_create(user=user, name="fresh")
    recent, recent_key = services.token_create(user=user, name="recent")
    old, old_key = services.token_create(user=user, name="old")
    now = timezone.now()
    ApiToken.objects.filter(pk=recent.pk).update(last_used_at=now - timedelta(seconds=30))
    ApiToken.objects.filter(pk=old.pk).update(last_used_at=now - timedelta(minutes=2))

    # when each reads the project
    statuses = [bearer(key).get("/api/v1/projects/safety/").status_code for key in (fresh_key, recent_key, old_key)]

    # then all are let in; the unused and the two-minute-old one record this use, the recent one is not written
    assert statuses == [200, 200, 200]
    used = {token.name: token.last_used_at for token in ApiToken.objects.filter(user=user)}
    assert used["fresh"] >= now and used["old"] >= now
    assert used["recent"] == now - timedelta(seconds=30)

    # when the user is deactivated, the same token is refused
    user.is_active = False
    user.save(update_fields=["is_active"])
    refused = bearer(fresh_key).get("/api/v1/projects/safety/")
    assert (refused.status_code, refused.json()["error"]["message"]) == (401, "User inactive.")


def test_someone_elses_token_cannot_be_revoked(user, other_user, client_for):
    token, _ = services.token_create(user=user, name="mine")

    response = client_for(other_user).delete(f"/api/v1/tokens/{token.pk}/")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Token {token.pk} not found."


def test_token_without_a_name_is_a_field_error(api_client):
    response = api_client.post("/api/v1/tokens/", {})

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "name: This field is required.", "fields": {"name": ["This field is required."]}}}


def test_project_create_makes_the_creator_admin_and_lists_it(other_user, client_for):
    client = client_for(other_user)

    created = client.post("/api/v1/projects/", {"slug": "red-team", "name": "Red team"})
    listed = client.get("/api/v1/projects/")

    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("slug", "name", "role", "protected_labels", "protected_label_role")} == {
        "slug": "red-team",
        "name": "Red team",
        "role": "admin",
        "protected_labels": ["production"],
        "protected_label_role": "reviewer",
    }
    assert listed.json()["count"] == 1 and [p["slug"] for p in listed.json()["results"]] == ["red-team"]


def test_duplicate_project_slug_is_409(project, api_client):
    response = api_client.post("/api/v1/projects/", {"slug": "safety"})

    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": "A project with slug 'safety' already exists.", "fields": {"slug": ["Already exists."]}}}


def test_admin_updates_settings_and_it_is_audited(project, api_client):
    response = api_client.patch("/api/v1/projects/safety/", {"protected_labels": ["production", "canary"], "protected_label_role": "admin"}, format="json")

    assert response.status_code == 200
    assert (response.json()["protected_labels"], response.json()["protected_label_role"]) == (["production", "canary"], "admin")
    project.refresh_from_db()
    assert project.protected_label_role == Role.ADMIN
    assert AuditEvent.objects.filter(action="project.settings").count() == 1


def test_members_add_change_role_remove_each_audited(project, api_client, make_user):
    make_user("carol")

    added = api_client.post("/api/v1/projects/safety/members/", {"username": "carol", "role": "viewer"})
    again = api_client.post("/api/v1/projects/safety/members/", {"username": "carol", "role": "editor"})
    changed = api_client.patch("/api/v1/projects/safety/members/carol/", {"role": "editor"})
    listed = api_client.get("/api/v1/projects/safety/members/")
    removed = api_client.delete("/api/v1/projects/safety/members/carol/")

    assert added.status_code == 201 and added.json()["role"] == "viewer"
    assert again.status_code == 409
    assert changed.status_code == 200 and changed.json()["role"] == "editor"
    assert [(m["username"], m["role"]) for m in listed.json()["results"]] == [("alice", "admin"), ("carol", "editor")]
    assert removed.status_code == 204
    assert not Membership.objects.filter(user__username="carol").exists()
    assert list(AuditEvent.objects.filter(action__startswith="member.").order_by("id").values_list("action", "data")) == [
        ("member.role", {"username": "carol", "from": None, "to": "viewer"}),
        ("member.role", {"username": "carol", "from": "viewer", "to": "editor"}),
        ("member.remove", {"username": "carol", "role": "editor"}),
    ]


def test_adding_an_unknown_user_names_the_field(project, api_client):
    response = api_client.post("/api/v1/projects/safety/members/", {"username": "nobody", "role": "viewer"})

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": "No user named 'nobody'.", "fields": {"username": ["Unknown user."]}}


def test_the_last_admin_cannot_be_removed(project, api_client):
    response = api_client.delete("/api/v1/projects/safety/members/alice/")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "A project needs at least one admin; promote someone else first."


def test_audit_events_are_for_reviewers(project, make_user, client_for):
    editor = make_user("ed", role=Role.EDITOR, project=project)
    reviewer = make_user("rev", role=Role.REVIEWER, project=project)

    refused = client_for(editor).get("/api/v1/projects/safety/audit-events/")
    listed = client_for(reviewer).get("/api/v1/projects/safety/audit-events/")

    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This needs the reviewer role in project 'safety'; you are editor."
    assert [e["action"] for e in listed.json()["results"]] == ["member.role", "member.role", "project.create"]
    assert listed.json()["results"][-1]["actor"] == "alice"


@pytest.mark.parametrize("rows", [3, 30])
def test_member_and_audit_lists_do_not_grow_in_queries(project, user, api_client, rows, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    for n in range(rows):
        services.member_set(project=project, user=get_user_model().objects.create_user(username=f"u{n}"), role=Role.VIEWER, actor=user)

    # project and role (one statement) + count + page (force_authenticate costs no query)
    with django_assert_num_queries(3):
        assert api_client.get("/api/v1/projects/safety/members/").json()["count"] == rows + 1
    with django_assert_num_queries(3):
        assert api_client.get("/api/v1/projects/safety/audit-events/").json()["count"] == rows + 1
    with django_assert_num_queries(2):
        assert api_client.get("/api/v1/projects/").json()["count"] == 1


def test_openapi_schema_is_served_with_the_error_component():
    response = APIClient().get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/projects/{project_slug}/models/{name}/checkpoints/"]["post"]
    assert operation["operationId"] == "checkpoints_register"
    assert {code: operation["responses"][code]["content"]["application/json"]["schema"]["$ref"] for code in ("400", "403", "404", "409")} == {
        code: "#/components/schemas/Error" for code in ("400", "403", "404", "409")
    }
    assert sorted(schema["components"]["schemas"]["ErrorDetail"]["properties"]) == ["code", "fields", "message"]
