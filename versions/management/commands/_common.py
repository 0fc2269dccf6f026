"""Helpers shared by the registry's management commands: every command acts as a named user
(``--user``) through the same services as the API, and turns a service's error into a
CommandError carrying its message."""

import contextlib
import json

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from core.errors import LetheError
from core.safe_json import json_loads
from versions.selectors import project_get


@contextlib.contextmanager
def service_errors():
    try:
        yield
    except LetheError as exc:
        raise CommandError(str(exc)) from exc


def user_by_username(username):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}; create one with `manage.py lethe_user create {username}`.")
    return user


def project_by_slug(slug):
    with service_errors():
        return project_get(slug=slug)


def json_option(raw, name):
    if raw is None:
        return None
    try:
        return json_loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--{name} is not valid JSON: {exc}.") from exc
