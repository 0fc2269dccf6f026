"""Every hand-written SQL statement of the runs app (webhooks included), as versions/sql.py is the
registry's: names from the models' ``_meta``, values as placeholders, each statement built whole
by one function, and tests/jobs/test_jobs_sql.py comparing each with its ORM equivalent on SQLite
and PostgreSQL. It lives here, not in versions/sql.py, because the registry never imports jobs."""

import json
from functools import cache

from django.db import connection

from jobs.models import Webhook


@cache
def _active_hook_events_sql():
    quote, field = connection.ops.quote_name, Webhook._meta.get_field
    return (
        f"SELECT {quote(Webhook._meta.pk.column)}, {quote(field('events').column)} FROM {quote(Webhook._meta.db_table)} "
        f"WHERE {quote(field('project').column)} = %s AND {quote(field('active').column)}"
    )


def active_hook_events(*, project_id):
    """(id, events) of the project's active webhooks, unordered. Every registration, commit and
    label move asks, and nearly always gets nothing: a plain statement, because compiling the ORM
    query cost 3x running it (0.75 of 1.0 ms)."""
    with connection.cursor() as cursor:
        cursor.execute(_active_hook_events_sql(), [project_id])
        rows = cursor.fetchall()
    # The JSON column arrives as text from both backends' raw cursors (Django decodes it in the field).
    return [(pk, json.loads(events) if isinstance(events, str) else events) for pk, events in rows]
