"""One tiny vision-language model per session (built in seconds), registered per test through
the real services."""

import pytest

from tests.crossmodal.cases import BENIGN_ROWS, HARMFUL_ROWS
from mlcore.tiny_vlm import TinyVLMSpec, build_tiny_vlm
from versions import services


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    spec = TinyVLMSpec(vocab_size=400, train_steps=150, batch_size=16, benign_images=4)
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), rows=HARMFUL_ROWS + BENIGN_ROWS, spec=spec)


@pytest.fixture
def crossmodal_var(settings, tmp_path):
    """Scratch directories and the materialized-checkpoint cache live in this test's VAR_DIR."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_HEARTBEAT_SECONDS = 3600
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_DEVICE = "cpu"
    return settings.VAR_DIR


@pytest.fixture
def vlm_checkpoint(crossmodal_var, project, user, tiny_vlm_dir):
    model = services.model_create(project=project, name="tiny-vlm", actor=user)
    return services.checkpoint_register_directory(model=model, directory=tiny_vlm_dir, actor=user, kind="full", architecture="vision-language", message="tiny LLaVA")
