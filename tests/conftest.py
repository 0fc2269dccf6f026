"""Shared fixtures. Data is set up through the real services, never by writing rows directly."""
import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from versions import services
from versions.models import Role


@pytest.fixture(scope="session", autouse=True)
def _collected_static(tmp_path_factory):
    """Static files collected once per session into their own STATIC_ROOT, as a deployment does.

    Pages name static files through the manifest (hashed names), so every test that renders a
    template needs it; and tests then serve exactly what production serves (WhiteNoise reads
    STATIC_ROOT), so a broken reference or a missing compressed copy fails here, not after
    deploying. WhiteNoise's finders mode would hide both, hence not WHITENOISE_USE_FINDERS."""
    from django.core.management import call_command
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Each test stores blobs in its own folder, so nothing leaks between tests."""
    root = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root), "allow_overwrite": True}},
    }
    from django.core.files.storage import storages

    storages._storages.pop("artifacts", None)
    yield root
    storages._storages.pop("artifacts", None)


@pytest.fixture
def make_user(db):
    def make(username, role=None, project=None, password="pw-for-tests-only"):
        user = services.user_create(username=username, password=password)
        if role is not None:
            admin = project.memberships.filter(role=Role.ADMIN).first().user
            services.member_set(project=project, user=user, role=role, actor=admin)
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def project(user):
    return services.project_create(slug="safety", name="Safety team", creator=user)


@pytest.fixture
def api_client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def client_for():
    """An API client authenticated as the given user (or anonymous for None)."""

    def make(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make


def pytest_report_header(config):
    return f"database: {os.environ.get('DATABASE_URL', 'sqlite (default)')}"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The default tiny model (trained on the bundled corpus), built once per test session."""
    from unlearning.engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")
