"""The database connection dropped in the middle of a write: the API answers 503 with the
``database_unavailable`` error body, and nothing half-written remains.

On PostgreSQL, a second connection runs ``pg_terminate_backend`` on the request's own backend
at the exact statement we choose (a ``connection.execute_wrapper`` pauses there), which is what
a database restart or a failover does to a live connection.
"""

import psycopg
import pytest
from django.db import connection
from rest_framework.test import APIClient

from versions import services
from versions.models import AuditEvent, LabelEvent, PromptVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _terminate_own_backend():
    settings = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])


def _drop_connection_before(sql_fragment):
    """An execute wrapper that kills this connection right before the first statement
    containing ``sql_fragment`` (so earlier statements of the transaction did run)."""
    fired = []

    def wrapper(execute, sql, params, many, context):
        if not fired and sql_fragment in sql:
            fired.append(sql)
            _terminate_own_backend()
        return execute(sql, params, many, context)

    return wrapper, fired


def _client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_commit_answers_503_and_stores_no_version_when_the_connection_drops_mid_transaction(on_postgres, project, user):
    # given a prompt with one version
    prompt = services.prompt_create(project=project, name="system", actor=user)
    services.prompt_version_commit(prompt=prompt, template="v1", actor=user)
    audit_before = AuditEvent.objects.count()
    wrapper, fired = _drop_connection_before('INSERT INTO "versions_promptversion"')

    # when the connection is killed just before the new version row is inserted
    with connection.execute_wrapper(wrapper):
        response = _client(user).post("/api/v1/projects/safety/prompts/system/versions/", {"template": "v2"}, format="json")
    connection.close()

    # then a clear, retryable error, and the registry is exactly as before
    assert len(fired) == 1
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable; nothing was changed. Retry in a moment.",
            "fields": {},
        }
    }
    prompt.refresh_from_db()
    assert prompt.version_count == 1
    assert list(PromptVersion.objects.filter(prompt=prompt).values_list("number", flat=True)) == [1]
    assert AuditEvent.objects.count() == audit_before

    # and the next request, on a fresh connection, succeeds with the next gap-free number
    retried = _client(user).post("/api/v1/projects/safety/prompts/system/versions/", {"template": "v2"}, format="json")
    assert retried.status_code == 201
    assert retried.json()["number"] == 2


def test_label_move_answers_503_and_leaves_label_and_history_unchanged_when_the_connection_drops(on_postgres, project, user):
    # given a label on version 1 of a prompt with two versions
    prompt = services.prompt_create(project=project, name="system", actor=user)
    first = services.prompt_version_commit(prompt=prompt, template="v1", actor=user)
    services.prompt_version_commit(prompt=prompt, template="v2", actor=user)
    label = services.label_move(name="staging", actor=user, prompt_version=first).label
    events_before = list(LabelEvent.objects.filter(label=label).values_list("id", flat=True))
    wrapper, fired = _drop_connection_before('INSERT INTO "versions_labelevent"')

    # when the connection is killed after the label row was updated but before its event is written
    with connection.execute_wrapper(wrapper):
        response = _client(user).put("/api/v1/projects/safety/prompts/system/labels/staging/", {"version": 2}, format="json")
    connection.close()

    # then 503 and neither the move nor its event exists
    assert len(fired) == 1
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    label.refresh_from_db()
    assert label.prompt_version_id == first.pk
    assert list(LabelEvent.objects.filter(label=label).values_list("id", flat=True)) == events_before
