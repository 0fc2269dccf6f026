"""Events the registry publishes: ``prompt_version.committed``, ``checkpoint.registered``,
``label.moved``. Higher layers subscribe in their ``AppConfig.ready()`` (webhooks do, in
``jobs.apps``), so the registry never imports them.

Published inside the action's transaction: a subscriber that writes (webhook delivery rows)
commits or rolls back with the action. Subscribers must not raise.
"""

from django.dispatch import Signal

# Sent with keyword arguments project, event, payload.
registry_event = Signal()


def event_publish(*, project, event, payload) -> None:
    registry_event.send(sender="versions", project=project, event=event, payload=payload)


# Sent with keyword argument project inside project_delete's transaction, before any row goes: a
# higher layer clears what would stop its rows being deleted in the bundle's order (jobs: a
# retry's link to the run it retried).
project_deleting = Signal()
