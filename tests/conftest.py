"""Shared fixtures. Data is set up through the real services, never by writing rows directly."""

import os
import socket

import pytest
from django.db import connection
from rest_framework.test import APIClient

from versions import services
from versions.models import Role

# The loopback S3 server and per-test buckets of the object-store tests.
pytest_plugins = ["tests.s3_server"]


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


@pytest.fixture(autouse=True)
def dns_stub(monkeypatch):
    """The product never resolves a name through real DNS in a test: the egress check's resolver
    answers from this table ({name: [addresses]}, which a test may extend) and fails for any other
    name, so a bug cannot send a request anywhere a test did not say."""
    from core import egress

    names = {"localhost": ["127.0.0.1"]}

    def resolve(host, port):
        try:
            return list(names[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not in this test's DNS stub") from None

    monkeypatch.setattr(egress, "resolve_host", resolve)
    return names


@pytest.fixture
def allow_loopback(settings):
    """Outgoing requests may reach 127.0.0.0/8 (test servers listen there), as an operator would
    allow with LETHE_EGRESS_ALLOW_NETWORKS=127.0.0.0/8."""
    settings.LETHE_EGRESS_ALLOW_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def chat_server():
    """A real OpenAI-compatible server on 127.0.0.1 (tests/chat_server.py)."""
    from tests.chat_server import ChatServer

    server = ChatServer()
    yield server
    server.close()


@pytest.fixture
def judge_endpoint(settings, chat_server):
    """An operator profile "judge" for the chat server, whose loopback network the profile allows;
    returns a function that changes the profile's settings."""

    def configure(**profile):
        settings.LETHE_ENDPOINTS = {"judge": {"base_url": chat_server.url, "allow_networks": ["127.0.0.1/32"], "backoff_seconds": 0, "max_concurrency": 1, **profile}}
        return settings.LETHE_ENDPOINTS["judge"]

    configure()
    return configure


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters (failed sign-ins, token creations) live in the cache: each test starts
    with none, whatever the tests before it did."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


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
    from mlcore.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def judge_models_root(tmp_path_factory):
    """The model directory (LETHE_MODEL_DIR) the tiny judge models are built in, once per session."""
    return tmp_path_factory.mktemp("judge-models")


@pytest.fixture(scope="session")
def harmbench_judge_dir(judge_models_root):
    """A tiny Llama trained on the spot to answer HarmBench's classifier prompt ("Yes" / "No")."""
    from evals.tiny_judges import build_tiny_judge

    return build_tiny_judge(judge_models_root / "harmbench", preset="harmbench-llama2-cls")


@pytest.fixture(scope="session")
def llama_guard_judge_dir(judge_models_root):
    """A tiny Llama trained on the spot to answer Llama Guard 3's prompt ("safe" / "unsafe" + code)."""
    from evals.tiny_judges import build_tiny_judge

    return build_tiny_judge(judge_models_root / "llama-guard", preset="llama-guard-3")


@pytest.fixture
def harmbench_judge(settings, harmbench_judge_dir):
    """The tiny HarmBench judge as a request names it: a path relative to the operator's LETHE_MODEL_DIR."""
    settings.LETHE_MODEL_DIR = str(harmbench_judge_dir.parent)
    return harmbench_judge_dir.name


@pytest.fixture
def llama_guard_judge(settings, llama_guard_judge_dir):
    """The tiny Llama Guard judge as a request names it (relative to LETHE_MODEL_DIR)."""
    settings.LETHE_MODEL_DIR = str(llama_guard_judge_dir.parent)
    return llama_guard_judge_dir.name


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")
