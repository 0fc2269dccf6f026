"""The artifact store's disk fills up during an upload: the client gets a clear error in the
API's JSON shape, and nothing partial is left (no blob file, no spool file, no row).

The store is a real 1 MiB tmpfs mounted on the test's artifact folder, so the write fails with
the kernel's own ENOSPC; on a machine where the test cannot mount (not root, no CAP_SYS_ADMIN),
it skips and says why."""

import subprocess

import pytest

from tests.versions.test_versions_artifact_transfer import CHECKPOINTS, parts, write_large_full
from versions import services
from versions.models import Blob, Checkpoint


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user)


@pytest.fixture
def small_disk(_artifact_root):
    _artifact_root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(_artifact_root)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs to mount a 1 MiB tmpfs as the artifact store (root with CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield _artifact_root
    finally:
        subprocess.run(["umount", "-l", str(_artifact_root)], check=True)


@pytest.mark.django_db
def test_a_disk_that_fills_up_during_an_upload_answers_507_and_leaves_nothing(model, api_client, tmp_path, small_disk):
    # given a checkpoint of about 3 MiB and a store with 1 MiB free
    folder = write_large_full(tmp_path / "full")

    # when it is uploaded
    response = api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart")

    # then the answer says the server is out of space, in the API's error shape
    assert response.status_code == 507, (response.status_code, response.content[:500])
    body = response.json()
    assert body["error"]["code"] == "insufficient_storage"
    assert body["error"]["message"] == "The server has no space left to store this upload; nothing was stored. Ask an operator to free space, then retry."
    # and nothing partial is left behind
    assert Checkpoint.objects.count() == 0
    assert Blob.objects.count() == 0
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []

    # and once space is back, the same upload succeeds
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    assert api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart").status_code == 201
