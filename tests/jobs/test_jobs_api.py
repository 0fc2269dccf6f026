"""REST API for runs and webhooks: viewers read runs, editors cancel and retry, admins manage hooks."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Run, Webhook
from jobs.services import run_create, run_execute
from jobs.webhooks import webhook_create, webhook_emit
from versions.models import Role

pytestmark = pytest.mark.django_db


def runs_url(project, suffix=""):
    return f"/api/v1/projects/{project.slug}/runs/{suffix}"


def hooks_url(project, suffix=""):
    return f"/api/v1/projects/{project.slug}/webhooks/{suffix}"


def test_run_list_is_paginated_newest_first_in_a_constant_number_of_queries(api_client, project, user, make_user):
    # given two runs, then four runs by several users
    run_create(project=project, kind="test-steps", created_by=user)
    run_create(project=project, kind="test-steps", created_by=user)
    with CaptureQueriesContext(connection) as few:
        first = api_client.get(runs_url(project))
    for name in ("carol", "dave"):
        run_create(project=project, kind="test-fail", created_by=make_user(name, role=Role.EDITOR, project=project))

    # when the list is read again
    with CaptureQueriesContext(connection) as many:
        response = api_client.get(runs_url(project))

    # then it has every run, newest first, and the query count did not grow
    assert first.status_code == 200
    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert [run["created_by"] for run in response.json()["results"]] == ["dave", "carol", "alice", "alice"]
    assert len(many) == len(few)
    assert "log" not in response.json()["results"][0]


def test_run_list_filters_by_status_and_kind(api_client, project, user):
    # given a failed run and a queued one
    failed = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    run_create(project=project, kind="test-steps", created_by=user)

    # when filtered
    by_status = api_client.get(runs_url(project), {"status": "failed"})
    by_kind = api_client.get(runs_url(project), {"kind": "test-fail"})
    bad = api_client.get(runs_url(project), {"status": "exploded"})

    # then each filter keeps the failed run only; an unknown status is refused
    assert [run["id"] for run in by_status.json()["results"]] == [failed.pk]
    assert [run["id"] for run in by_kind.json()["results"]] == [failed.pk]
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"


def test_run_detail_has_progress_error_and_log(api_client, project, user):
    # given a failed run
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")

    # when it is read
    response = api_client.get(runs_url(project, f"{run.pk}/"))

    # then it carries its lifecycle
    body = response.json()
    assert response.status_code == 200
    assert (body["id"], body["kind"], body["status"], body["error"]) == (run.pk, "test-fail", "failed", "step 2 diverged: loss is nan")
    assert body["progress"] == 1.0
    assert body["progress_message"] == "step 1/1"
    assert body["log"].startswith("step 1\nTraceback")
    assert body["worker"] == "test"
    assert body["retry_of"] is None


def test_run_of_another_project_is_not_found(api_client, project, user, make_user):
    # given a run in a project the user is not a member of
    from versions.services import project_create

    outsider = make_user("mallory")
    other = project_create(slug="elsewhere", name="Elsewhere", creator=outsider)
    run = run_create(project=other, kind="test-steps", created_by=outsider)

    # when read through either project
    through_own = api_client.get(runs_url(project, f"{run.pk}/"))
    through_other = api_client.get(runs_url(other, f"{run.pk}/"))

    # then neither shows it
    assert through_own.status_code == 404
    assert through_other.status_code == 404


def test_editor_cancels_a_queued_run(client_for, project, make_user):
    # given an editor and a queued run
    editor = make_user("erin", role=Role.EDITOR, project=project)
    run = run_create(project=project, kind="test-steps", created_by=editor)

    # when the editor cancels it
    response = client_for(editor).post(runs_url(project, f"{run.pk}/cancel/"))

    # then it is cancelled
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["error"] == "cancelled by erin before it started"


def test_viewer_may_read_but_not_cancel_or_retry(client_for, project, user, make_user):
    # given a viewer and a failed run
    viewer = make_user("vera", role=Role.VIEWER, project=project)
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    client = client_for(viewer)

    # when the viewer reads, cancels and retries
    read = client.get(runs_url(project, f"{run.pk}/"))
    cancel = client.post(runs_url(project, f"{run.pk}/cancel/"))
    retry = client.post(runs_url(project, f"{run.pk}/retry/"))

    # then only the read is allowed
    assert read.status_code == 200
    assert (cancel.status_code, cancel.json()["error"]["code"]) == (403, "permission_denied")
    assert (retry.status_code, retry.json()["error"]["code"]) == (403, "permission_denied")
    assert Run.objects.count() == 1


def test_retry_answers_the_new_linked_run(api_client, project, user):
    # given a failed run
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")

    # when it is retried
    response = api_client.post(runs_url(project, f"{run.pk}/retry/"))

    # then a new queued run points at it
    assert response.status_code == 201
    assert response.json()["retry_of"] == run.pk
    assert response.json()["status"] == "queued"
    assert response.json()["created_by"] == "alice"


def test_cancel_of_a_finished_run_is_a_conflict(api_client, project, user):
    run = run_execute(run_id=run_create(project=project, kind="test-fail", created_by=user).pk, worker="test")
    response = api_client.post(runs_url(project, f"{run.pk}/cancel/"))
    assert response.status_code == 409
    assert response.json()["error"]["message"] == f"Run {run.pk} is already failed; only a queued or running run can be cancelled."


def test_admin_creates_a_webhook_and_sees_its_secret_once(api_client, project, dns_stub):
    # when an admin creates a hook without a secret (its host resolves to the allowed loopback)
    dns_stub["hooks.partner.test"] = ["127.0.0.1"]
    created = api_client.post(hooks_url(project), {"url": "https://hooks.partner.test/lethe", "events": ["run.finished", "label.moved"]})
    listed = api_client.get(hooks_url(project))

    # then a Standard Webhooks secret was generated and shown once; the list does not show it
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_") and len(created.json()["secret"]) == 50
    assert Webhook.objects.get().secret == created.json()["secret"]
    assert created.json()["events"] == ["label.moved", "run.finished"]
    assert [hook["url"] for hook in listed.json()["results"]] == ["https://hooks.partner.test/lethe"]
    assert "secret" not in listed.json()["results"][0]


def test_admin_updates_deletes_and_reads_deliveries(api_client, project, user, closed_port_url):
    # given a hook with one delivery
    hook = webhook_create(project=project, url=closed_port_url, events=["label.moved"], actor=user)
    webhook_emit(project=project, event="label.moved", payload={"label": "production"})

    # when it is read, paused, its deliveries listed, then deleted
    paused = api_client.patch(hooks_url(project, f"{hook.pk}/"), {"active": False})
    deliveries = api_client.get(hooks_url(project, f"{hook.pk}/deliveries/"))
    deleted = api_client.delete(hooks_url(project, f"{hook.pk}/"))

    # then each did what it says
    assert (paused.status_code, paused.json()["active"]) == (200, False)
    assert deliveries.status_code == 200
    assert [(d["event"], d["status"], d["attempts"], d["payload"]) for d in deliveries.json()["results"]] == [("label.moved", "pending", 0, {"label": "production"})]
    assert deleted.status_code == 204
    assert Webhook.objects.count() == 0


def test_webhooks_need_the_admin_role(client_for, project, make_user):
    # given an editor
    editor = make_user("erin", role=Role.EDITOR, project=project)

    # when the editor lists or creates hooks
    client = client_for(editor)
    listed = client.get(hooks_url(project))
    created = client.post(hooks_url(project), {"url": "https://hooks.partner.test/x", "events": ["run.finished"]})

    # then both are forbidden
    assert listed.status_code == 403
    assert created.status_code == 403
    assert Webhook.objects.count() == 0


def test_webhook_create_validates_its_input(api_client, project):
    response = api_client.post(hooks_url(project), {"url": "https://hooks.partner.test/x", "events": ["label.deleted"]})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"events": ["Unknown event 'label.deleted'."]}
    assert response.json()["error"]["message"].startswith("Unknown webhook event(s) label.deleted; expected some of ")


def test_openapi_schema_describes_runs_and_webhooks(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})
    paths = response.json()["paths"]
    assert response.status_code == 200
    assert set(paths["/api/v1/projects/{project_slug}/runs/{run_id}/retry/"]) == {"post"}
    assert set(paths["/api/v1/projects/{project_slug}/webhooks/{webhook_id}/"]) == {"get", "patch", "delete"}
    assert "RunDetail" in response.json()["components"]["schemas"]
