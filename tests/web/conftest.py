"""Page tests: a Django test client signed in as a project member; registry data through the
real services (tests/web/builders.py)."""

import pytest
from django.test import Client

from tests.web import builders


@pytest.fixture
def client_as():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def web(client_as, user):
    return client_as(user)


@pytest.fixture
def lethe_var(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    return settings.VAR_DIR


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    return builders.tiny_model_pair(tmp_path_factory.mktemp("web-tiny"))


@pytest.fixture(scope="session")
def explorer_pair(tmp_path_factory):
    return builders.explorer_model_pair(tmp_path_factory.mktemp("explorer-tiny"))
