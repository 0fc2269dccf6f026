"""Checkpoint bytes in and out: uploads hashed as they are received and moved into the store,
downloads hashed while they are sent with the last chunk of each blob held back until its hash
matched, and the spool folder left empty."""

import errno
import hashlib
import io
import os
import tarfile
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.numpy import save_file

from tests.versions.checkpoint_files import tar_of, write_full
from versions import blob_store, services
from versions.api.uploads import HashingUploadHandler
from versions.blob_store import CHUNK, SPOOL_FOLDER, BlobCorrupted, ReceivedFile
from versions.hashing import OVERLAP_MIN_BYTES, OverlappedSha256
from versions.models import Blob

CHECKPOINTS = "/api/v1/projects/safety/models/llama-tiny/checkpoints"


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user)


def write_large_full(directory):
    """A full checkpoint whose weights span several upload and download chunks, with a size that
    is not a multiple of the chunk (so the last chunk is short)."""
    directory = write_full(directory)
    save_file({"w": np.arange(3 * CHUNK // 4 + 12345, dtype=np.float32)}, str(directory / "model.safetensors"))
    return directory


def parts(folder):
    return {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())}


def spooled_files(artifact_root):
    return [p for p in (artifact_root / SPOOL_FOLDER).rglob("*")]


def stored_files(artifact_root):
    return sorted(p for p in (artifact_root / "blobs").rglob("*") if p.is_file())


# ---------------------------------------------------------------- hashing


@pytest.mark.parametrize("sizes", [[], [10], [OVERLAP_MIN_BYTES - 1, 3, OVERLAP_MIN_BYTES, 5 * CHUNK + 7, 1, 2 * CHUNK]])
def test_overlapped_sha256_equals_hashlib(sizes):
    chunks = [os.urandom(size) for size in sizes]

    with OverlappedSha256() as hasher:
        for chunk in chunks:
            hasher.update(chunk)
        digest = hasher.hexdigest()

    assert digest == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert hasher.size == sum(sizes)


def test_upload_handler_writes_the_file_and_hashes_the_same_bytes(_artifact_root):
    chunks = [os.urandom(CHUNK), os.urandom(100), os.urandom(CHUNK + 1)]
    handler = HashingUploadHandler()

    handler.new_file("model.safetensors", "model.safetensors", "application/octet-stream", None)
    for offset, chunk in zip([0, CHUNK, CHUNK + 100], chunks, strict=True):
        handler.receive_data_chunk(chunk, offset)
    uploaded = handler.file_complete(sum(map(len, chunks)))

    path = uploaded.temporary_file_path()
    assert uploaded.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert (uploaded.size, uploaded.read()) == (2 * CHUNK + 101, b"".join(chunks))
    assert os.path.dirname(path) == str(_artifact_root / SPOOL_FOLDER)
    uploaded.close()
    assert not os.path.exists(path)


def test_an_interrupted_upload_leaves_no_spool_file(_artifact_root):
    handler = HashingUploadHandler()
    handler.new_file("model.safetensors", "model.safetensors", "application/octet-stream", None)
    handler.receive_data_chunk(os.urandom(CHUNK), 0)

    handler.upload_interrupted()

    assert spooled_files(_artifact_root) == []


# ---------------------------------------------------------------- upload through the API


@pytest.mark.django_db
def test_upload_stores_each_file_under_the_sha256_of_its_bytes_and_leaves_no_spool_file(model, api_client, tmp_path, _artifact_root, monkeypatch):
    folder = write_large_full(tmp_path / "full")

    def read_again(path):
        raise AssertionError(f"{path} was read again to hash it; it was hashed as it was received")

    monkeypatch.setattr(blob_store, "sha256_of_path", read_again)
    response = api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart")

    assert response.status_code == 201, response.json()
    expected = {hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes() for p in folder.iterdir()}
    assert set(Blob.objects.values_list("sha256", flat=True)) == set(expected)
    for blob in Blob.objects.all():
        assert (_artifact_root / blob.storage_name).read_bytes() == expected[blob.sha256]
        assert blob.size == len(expected[blob.sha256])
    assert spooled_files(_artifact_root) == []


@pytest.mark.django_db
def test_registering_identical_files_again_stores_no_new_bytes(model, api_client, tmp_path, _artifact_root):
    folder = write_large_full(tmp_path / "full")
    first = api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart")
    stored = {p: p.stat().st_size for p in stored_files(_artifact_root)}

    again = api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart")

    assert (first.status_code, again.status_code) == (201, 201)
    assert (again.json()["number"], again.json()["sha256"]) == (2, first.json()["sha256"])
    assert {p: p.stat().st_size for p in stored_files(_artifact_root)} == stored
    assert Blob.objects.count() == 3
    assert spooled_files(_artifact_root) == []


@pytest.mark.django_db
def test_archive_members_are_stored_under_the_sha256_of_their_bytes(model, api_client, tmp_path, _artifact_root):
    folder = write_large_full(tmp_path / "full")

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("ckpt.tar", tar_of(folder))}, format="multipart")

    assert response.status_code == 201, response.json()
    files = api_client.get(f"{CHECKPOINTS}/1/files/").json()["results"]
    assert {f["path"]: f["sha256"] for f in files} == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert spooled_files(_artifact_root) == []


@pytest.mark.django_db
def test_a_refused_upload_leaves_nothing_stored_or_spooled(model, api_client, tmp_path, _artifact_root):
    folder = write_large_full(tmp_path / "full")
    (folder / "model.safetensors").write_bytes(b"\x80\x04" + (folder / "model.safetensors").read_bytes())

    response = api_client.post(f"{CHECKPOINTS}/", parts(folder), format="multipart")

    assert response.status_code == 400
    assert Blob.objects.count() == 0
    assert [p for p in _artifact_root.rglob("*") if p.is_file()] == []


# ---------------------------------------------------------------- storing a received file


@pytest.mark.django_db
def test_a_received_file_is_moved_into_the_store_not_copied(_artifact_root):
    data = os.urandom(CHUNK + 3)
    spooled = blob_store.spool_directory() / "part.upload"
    spooled.write_bytes(data)
    inode = spooled.stat().st_ino

    blob = blob_store.blob_put_path(ReceivedFile(path=spooled, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))

    stored = _artifact_root / blob.storage_name
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert (stored.stat().st_ino, stored.read_bytes()) == (inode, data)
    assert not spooled.exists()


@pytest.mark.django_db
def test_a_received_file_is_copied_when_the_store_is_on_another_filesystem(_artifact_root, monkeypatch):
    data = os.urandom(1000)
    spooled = blob_store.spool_directory() / "part.upload"
    spooled.write_bytes(data)

    def cross_device(source, destination):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(blob_store.os, "replace", cross_device)
    blob = blob_store.blob_put_path(ReceivedFile(path=spooled, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))

    assert (_artifact_root / blob.storage_name).read_bytes() == data
    assert spooled.read_bytes() == data  # the request that wrote it deletes it


@pytest.mark.django_db
def test_a_received_file_whose_size_changed_is_hashed_again(_artifact_root):
    data = os.urandom(1000)
    spooled = blob_store.spool_directory() / "part.upload"
    spooled.write_bytes(data + b"appended")

    blob = blob_store.blob_put_path(ReceivedFile(path=spooled, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))

    assert blob.sha256 == hashlib.sha256(data + b"appended").hexdigest()


# ---------------------------------------------------------------- download


def corrupt_last_byte(artifact_root, blob):
    path = artifact_root / blob.storage_name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.django_db
def test_a_corrupted_blob_is_never_delivered_whole(model, user, api_client, tmp_path, _artifact_root):
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_large_full(tmp_path / "full"), actor=user)
    good = b"".join(api_client.get(f"{CHECKPOINTS}/1/download/").streaming_content)
    weights = tarfile.open(fileobj=io.BytesIO(good)).getmember("model.safetensors")
    corrupt_last_byte(_artifact_root, checkpoint.files.get(path="model.safetensors").blob)

    delivered = []
    with pytest.raises(BlobCorrupted, match="failed verification"):
        for chunk in api_client.get(f"{CHECKPOINTS}/1/download/").streaming_content:
            delivered.append(chunk)

    # everything up to the blob's last chunk, which was held back until the hash failed
    delivered = b"".join(delivered)
    assert len(delivered) == weights.offset_data + (weights.size - 1) // CHUNK * CHUNK
    assert good.startswith(delivered)


@pytest.mark.django_db
def test_the_download_is_the_stored_bytes(model, user, api_client, tmp_path):
    folder = write_large_full(tmp_path / "full")
    services.checkpoint_register_directory(model=model, directory=folder, actor=user)

    response = api_client.get(f"{CHECKPOINTS}/1/download/")

    body = b"".join(response.streaming_content)
    assert len(body) == int(response["Content-Length"])
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert {m.name: archive.extractfile(m).read() for m in archive} == {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.django_db
def test_a_reader_that_stops_at_the_blob_size_is_checked_before_the_last_bytes(model, user, tmp_path, _artifact_root):
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_large_full(tmp_path / "full"), actor=user)
    blob = checkpoint.files.get(path="model.safetensors").blob
    with blob_store.blob_open(blob) as reader:
        assert len(reader.read(blob.size)) == blob.size
    corrupt_last_byte(_artifact_root, blob)

    with blob_store.blob_open(blob) as reader, pytest.raises(BlobCorrupted, match="failed verification"):
        reader.read(blob.size)  # tarfile.addfile reads exactly this much, never reaching EOF


# ---------------------------------------------------------------- spool leftovers


@pytest.mark.django_db
def test_the_sweep_removes_spool_leftovers_past_the_grace_period_only(_artifact_root):
    spool = blob_store.spool_directory()
    stale_file, stale_folder, fresh = spool / "killed.upload", spool / "lethe-upload-killed", spool / "in-flight.upload"
    stale_file.write_bytes(b"x")
    (stale_folder / "extracted").mkdir(parents=True)
    (stale_folder / "extracted" / "member-0").write_bytes(b"y")
    fresh.write_bytes(b"z")
    hour_ago = time.time() - 3600
    for path in (stale_file, stale_folder / "extracted" / "member-0", stale_folder / "extracted", stale_folder):
        os.utime(path, (hour_ago, hour_ago))

    assert blob_store.blobs_sweep_unreferenced(grace_seconds=600) == []

    assert sorted(p.name for p in spool.iterdir()) == ["in-flight.upload"]
