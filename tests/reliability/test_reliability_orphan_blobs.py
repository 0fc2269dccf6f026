"""A registration whose transaction rolls back (the handler raised after registering, e.g. a
branch move refused, or the process died before the commit) must leave no blob behind."""

import pytest
from django.db import transaction

from tests.reliability.conftest import blobs_in_storage, unreferenced_blobs
from tests.versions.checkpoint_files import write_full
from versions import services
from versions.blob_store import blobs_sweep_unreferenced
from versions.models import Blob, Checkpoint

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rolled_back_registration_leaves_no_blob_file_after_the_sweep(project, user, tmp_path, _artifact_root):
    # given a model
    model = services.model_create(project=project, name="tiny", actor=user)

    # when a checkpoint is registered inside a transaction that then fails
    with pytest.raises(RuntimeError, match="lost before commit"):
        with transaction.atomic():
            services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "weights"), actor=user)
            raise RuntimeError("lost before commit")

    # then no row remains, and the files it wrote are swept once past the grace period
    assert Checkpoint.objects.count() == 0
    assert Blob.objects.count() == 0
    written = blobs_in_storage(_artifact_root)
    assert len(written) == 3
    assert blobs_sweep_unreferenced() == []  # inside the grace period: a registration may be in flight
    assert sorted(blobs_sweep_unreferenced(grace_seconds=0)) == sorted(written)
    assert blobs_in_storage(_artifact_root) == set()
    assert unreferenced_blobs() == set()


def test_the_sweep_keeps_every_registered_blob(project, user, tmp_path, _artifact_root):
    model = services.model_create(project=project, name="tiny", actor=user)
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "weights"), actor=user)

    assert blobs_sweep_unreferenced(grace_seconds=0) == []
    assert blobs_in_storage(_artifact_root) == set(Blob.objects.values_list("sha256", flat=True))
