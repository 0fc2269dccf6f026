"""Each statement of jobs/sql.py returns what its ORM equivalent returns (run on SQLite, and on
PostgreSQL with LETHE_DATABASE_URL), on webhooks made through the services."""

import pytest

from jobs import sql
from jobs.models import Webhook
from jobs.webhooks import webhook_create, webhook_update
from versions import services

pytestmark = pytest.mark.django_db


def test_active_hook_events_are_the_projects_active_hooks_with_their_events(project, user, closed_port_url):
    other = services.project_create(slug="other", name="Other team", creator=user)
    labels = webhook_create(project=project, url=closed_port_url, events=["label.moved"], actor=user)
    webhook_create(project=project, url=closed_port_url, events=["label.moved", "run.finished"], actor=user)
    paused = webhook_create(project=project, url=closed_port_url, events=["run.finished"], actor=user)
    webhook_update(webhook=paused, actor=user, active=False)
    webhook_create(project=other, url=closed_port_url, events=["label.moved"], actor=user)

    found = sql.active_hook_events(project_id=project.pk)

    expected = list(Webhook.objects.filter(project=project, active=True).order_by("pk").values_list("pk", "events"))
    assert sorted(found) == expected
    assert [events for pk, events in sorted(found)] == [["label.moved"], ["label.moved", "run.finished"]]
    assert sorted(found)[0][0] == labels.pk
    assert sql.active_hook_events(project_id=0) == []
