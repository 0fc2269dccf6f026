import pytest


@pytest.fixture(scope="session")
def complier_and_refuser(tmp_path_factory):
    """Two tiny causal LMs: one answers harmful requests with placeholders, one refuses."""
    from tests.web.builders import tiny_model_pair

    return tiny_model_pair(tmp_path_factory.mktemp("security-tiny"))


@pytest.fixture
def finished_evaluation(settings, tmp_path, project, user, complier_and_refuser):
    """A real A/B evaluation on a real suite: arm A complies with the harmful cases, B refuses."""
    from tests.web import builders

    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=complier_and_refuser)
    return builders.evaluation_finished(project=project, actor=user, setup=setup)
