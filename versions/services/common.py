"""What every registry write shares: the name rule of prompts, models, labels and datasets, and the registry event a write emits inside its transaction."""

import re


from core.errors import ValidationFailed
from versions.events import event_publish


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _emit(*, project, event, payload):
    """Called inside the action's transaction, so what subscribers write (webhook delivery rows)
    commits or rolls back with the action; subscribers never block or fail it."""
    event_publish(project=project, event=event, payload=payload)


def _check_name(kind, name):
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValidationFailed(
            f"Invalid {kind} name {name!r}: use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            fields={"name": ["Invalid name."]},
        )
