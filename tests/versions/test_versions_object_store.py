"""The blob store in an S3-compatible bucket (moto's server on 127.0.0.1): uploads land under
their content address only whole, downloads verify or redirect to a presigned URL, and the
orphan sweep, bundles, backup/restore and the deploy check work on the bucket as on a folder."""

import base64
import hashlib
import json
import re
import os
import struct
import urllib.request

import numpy as np
import pytest
from django.core.management import call_command
from safetensors.numpy import save_file

from tests.s3_server import bucket_keys, free_port, s3_storage_settings
from tests.versions.checkpoint_files import tar_of, write_adapter, write_full
from versions import blob_store, bundle, checks, object_store, services
from versions.api.uploads import HashingUploadHandler
from versions.checkpoint_materialization import checkpoint_materialize
from versions.models import Blob, Checkpoint, Project
from versions.object_store import ObjectStoreUnavailable

pytestmark = pytest.mark.django_db

CHECKPOINTS = "/api/v1/projects/safety/models/llama-tiny/checkpoints"


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user, base_ref="org/llama", base_revision="abc123")


def write_large_full(directory, *, megabytes):
    """A full checkpoint whose weights are larger than one 8 MiB multipart part."""
    folder = write_full(directory)
    weights = np.arange(megabytes * 1024 * 1024 // 4, dtype=np.float32).reshape(-1, 1024)
    save_file({"w": weights}, str(folder / "model.safetensors"))
    return folder


def test_an_uploaded_checkpoint_lands_in_the_bucket_under_its_hashes_and_reads_back_verified(model, api_client, tmp_path, s3_bucket, s3_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = write_full(tmp_path / "full")
    parts = {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())}

    response = api_client.post(f"{CHECKPOINTS}/", parts, format="multipart")

    assert response.status_code == 201, response.json()
    expected = sorted(Blob(sha256=hashlib.sha256(p.read_bytes()).hexdigest()).storage_name for p in folder.iterdir())
    assert bucket_keys(s3_client, s3_bucket) == expected  # no temporary key left under incoming/
    for item in Checkpoint.objects.get().files.all():
        assert blob_store.blob_read_bytes(item.blob) == (folder / item.path).read_bytes()
    tar = api_client.get(f"{CHECKPOINTS}/1/download/")
    assert tar.status_code == 200 and int(tar["Content-Length"]) == len(b"".join(tar.streaming_content))


def test_a_large_file_goes_up_in_parts_and_comes_down_by_a_presigned_redirect(model, user, api_client, tmp_path, s3_bucket, s3_client, settings):
    settings.LETHE_ARTIFACT_REDIRECT_BYTES = 1024 * 1024
    folder = write_large_full(tmp_path / "big", megabytes=20)
    weights = (folder / "model.safetensors").read_bytes()

    checkpoint = services.checkpoint_register_directory(model=model, directory=folder, actor=user)

    blob = checkpoint.files.get(path="model.safetensors").blob
    head = s3_client.head_object(Bucket=s3_bucket, Key=blob.storage_name)
    assert head["ContentLength"] == len(weights) == blob.size
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object: 20 MiB in 8 MiB parts
    response = api_client.get(f"{CHECKPOINTS}/1/files/model.safetensors")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{settings.STORAGES['artifacts']['OPTIONS']['endpoint_url']}/{s3_bucket}/{blob.storage_name}?")
    assert response["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(weights).digest()).decode()}:"
    with urllib.request.urlopen(response["Location"]) as fetched:  # the client's fetch, straight from the store
        assert hashlib.sha256(fetched.read()).hexdigest() == response["X-Lethe-Sha256"] == blob.sha256
    small = api_client.get(f"{CHECKPOINTS}/1/files/config.json")
    assert small.status_code == 200 and b"".join(small.streaming_content) == (folder / "config.json").read_bytes()


# ---------------------------------------------------------------- uploads stream into the bucket


@pytest.fixture
def no_local_disk(settings, tmp_path):
    """The upload spool folder (FILE_UPLOAD_TEMP_DIR, with a bucket for a store) is a plain file
    here: anything that tried to spool an upload to local disk (a spool file, a request's scratch
    folder) fails, so a passing request wrote nothing there. (Not the system temp folder: moto's
    server, the bucket's side, buffers large bodies there.)"""
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"")
    settings.FILE_UPLOAD_TEMP_DIR = str(blocked)
    yield blocked
    assert blocked.read_bytes() == b""


def unfinished_uploads(s3_client, bucket):
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_an_upload_streams_into_the_bucket_without_touching_the_local_disk(model, api_client, tmp_path, s3_bucket, s3_client, no_local_disk):
    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = write_full(tmp_path / "full")
    parts = {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())}

    response = api_client.post(f"{CHECKPOINTS}/", parts, format="multipart")

    assert response.status_code == 201, response.json()
    for path in folder.iterdir():
        key = Blob(sha256=hashlib.sha256(path.read_bytes()).hexdigest()).storage_name
        assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == path.read_bytes()
    assert bucket_keys(s3_client, s3_bucket, "incoming/") == [] and unfinished_uploads(s3_client, s3_bucket) == []


def test_an_upload_larger_than_a_part_lands_whole(model, api_client, tmp_path, s3_bucket, s3_client, no_local_disk):
    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = write_large_full(tmp_path / "big", megabytes=17)
    weights = (folder / "model.safetensors").read_bytes()

    response = api_client.post(f"{CHECKPOINTS}/", {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())}, format="multipart")

    assert response.status_code == 201, response.json()
    blob = Checkpoint.objects.get().files.get(path="model.safetensors").blob
    assert (blob.sha256, blob.size) == (hashlib.sha256(weights).hexdigest(), len(weights))
    assert s3_client.get_object(Bucket=s3_bucket, Key=blob.storage_name)["Body"].read() == weights
    assert bucket_keys(s3_client, s3_bucket, "incoming/") == [] and unfinished_uploads(s3_client, s3_bucket) == []


def test_an_incoming_upload_sends_full_parts_as_they_fill_and_leaves_nothing_once_closed(s3_bucket, s3_client):
    data = os.urandom(17 * 1024 * 1024)
    upload = object_store.IncomingUpload(blob_store.artifact_storage())

    for start in range(0, len(data), blob_store.CHUNK):
        upload.write(data[start : start + blob_store.CHUNK])
    [unfinished] = unfinished_uploads(s3_client, s3_bucket)
    upload._wait()  # the second part may still be on its way
    sent = s3_client.list_parts(Bucket=s3_bucket, Key=unfinished["Key"], UploadId=unfinished["UploadId"])["Parts"]
    upload.finish()
    landed = s3_client.get_object(Bucket=s3_bucket, Key=upload.name)
    upload.close()

    assert unfinished["Key"] == upload.name and upload.name.startswith("incoming/")
    assert [(part["PartNumber"], part["Size"]) for part in sent] == [(1, 8 * 1024 * 1024), (2, 8 * 1024 * 1024)]  # 1 MiB still in memory
    assert landed["ETag"].strip('"').endswith("-3") and landed["Body"].read() == data
    assert bucket_keys(s3_client, s3_bucket) == [] and unfinished_uploads(s3_client, s3_bucket) == []


def test_an_interrupted_or_discarded_upload_leaves_nothing_in_the_bucket(s3_bucket, s3_client):
    handler = HashingUploadHandler()
    handler.new_file("config.json", "config.json", "application/json", None)
    handler.receive_data_chunk(b'{"model_type": "llama"}', 0)
    handler.file_complete(23)
    handler.new_file("model.safetensors", "model.safetensors", "application/octet-stream", None)
    for index in range(9):  # one part sent, the next one filling
        handler.receive_data_chunk(os.urandom(blob_store.CHUNK), index * blob_store.CHUNK)
    assert len(bucket_keys(s3_client, s3_bucket, "incoming/")) == 1 and len(unfinished_uploads(s3_client, s3_bucket)) == 1

    handler.discard()  # what the parser does when the body breaks off or is refused

    assert bucket_keys(s3_client, s3_bucket) == [] and unfinished_uploads(s3_client, s3_bucket) == []


def test_a_refused_checkpoint_is_checked_in_the_bucket_and_leaves_nothing_there(model, api_client, tmp_path, s3_bucket, s3_client, no_local_disk):
    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = write_full(tmp_path / "full")
    # A header that fits the file but does not describe its 9 MiB of data: only the safetensors
    # library's own check (on the header read back from the bucket) finds it.
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    bad = struct.pack("<Q", len(header)) + header + bytes(9 * 1024 * 1024)
    parts = {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.name != "model.safetensors"}

    response = api_client.post(f"{CHECKPOINTS}/", {**parts, "model.safetensors": SimpleUploadedFile("model.safetensors", bad)}, format="multipart")

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["message"].startswith("model.safetensors: not a valid safetensors file (")
    assert bucket_keys(s3_client, s3_bucket) == [] and unfinished_uploads(s3_client, s3_bucket) == []
    assert Blob.objects.count() == 0 and Checkpoint.objects.count() == 0


def test_a_file_over_the_upload_limit_is_stopped_at_the_limit_and_leaves_nothing_in_the_bucket(model, api_client, tmp_path, s3_bucket, s3_client, settings, no_local_disk):
    from django.core.files.uploadedfile import SimpleUploadedFile

    # given a 2 MiB limit and a 20 MiB file
    settings.LETHE_MAX_UPLOAD_FILE_BYTES = 2 * 1024 * 1024
    folder = write_large_full(tmp_path / "big", megabytes=20)

    # when it is uploaded
    response = api_client.post(f"{CHECKPOINTS}/", {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())}, format="multipart")

    # then it is refused once the limit is passed (within one chunk of it), not after 20 MiB went
    # into the bucket, and nothing of it stays there
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    stopped = int(
        re.fullmatch(
            r"model\.safetensors: over the limit of 2097152 bytes \(LETHE_MAX_UPLOAD_FILE_BYTES\); the upload was stopped after (\d+) bytes and nothing of it was kept\.", message
        ).group(1)
    )
    assert 2 * 1024 * 1024 < stopped <= 2 * 1024 * 1024 + blob_store.CHUNK
    assert bucket_keys(s3_client, s3_bucket) == [] and unfinished_uploads(s3_client, s3_bucket) == []
    assert Blob.objects.count() == 0


def test_a_pickle_and_bad_json_are_refused_from_the_bucket_as_from_disk(model, api_client, tmp_path, s3_bucket, s3_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.versions.checkpoint_files import pickled_bytes

    folder = write_full(tmp_path / "full")
    parts = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    def post(**changed):
        upload = {name: SimpleUploadedFile(name, content) for name, content in {**parts, **changed}.items()}
        response = api_client.post(f"{CHECKPOINTS}/", upload, format="multipart")
        return response.status_code, response.json()["error"]["message"]

    assert post(**{"extra.safetensors": pickled_bytes()}) == (
        400,
        "extra.safetensors: the content is a Python pickle; pickled weights are refused whatever the file is called.",
    )
    assert post(**{"config.json": b"{not json"})[1].startswith("config.json: not valid JSON (")
    assert post(**{"empty.safetensors": b""}) == (400, "empty.safetensors: not a safetensors file (shorter than its 8-byte header length).")
    assert bucket_keys(s3_client, s3_bucket) == [] and unfinished_uploads(s3_client, s3_bucket) == []


def test_an_archive_is_still_extracted_locally_and_its_members_land_in_the_bucket(model, api_client, tmp_path, s3_bucket, s3_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    folder = write_full(tmp_path / "full")

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("ckpt.tar", tar_of(folder))}, format="multipart")

    assert response.status_code == 201, response.json()
    assert bucket_keys(s3_client, s3_bucket) == sorted(Blob(sha256=hashlib.sha256(p.read_bytes()).hexdigest()).storage_name for p in folder.iterdir())
    assert unfinished_uploads(s3_client, s3_bucket) == []


def test_a_damaged_object_is_an_error_not_data(model, user, tmp_path, s3_bucket, s3_client):
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "c"), actor=user)
    blob = checkpoint.files.get(path="config.json").blob
    s3_client.put_object(Bucket=s3_bucket, Key=blob.storage_name, Body=b'{"tampered": true}')

    with pytest.raises(blob_store.BlobCorrupted, match="failed verification"):
        blob_store.blob_read_bytes(blob)


def test_identical_files_are_stored_once_in_the_bucket(model, user, tmp_path, s3_bucket, s3_client):
    folder = write_full(tmp_path / "c")
    services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    services.checkpoint_register_directory(model=model, directory=folder, actor=user)

    assert len(bucket_keys(s3_client, s3_bucket)) == Blob.objects.count() == 3


def test_a_checkpoint_materializes_from_the_bucket_into_a_local_scratch_cache(model, user, tmp_path, s3_bucket):
    base = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    adapter = services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "adapter"), actor=user, parents=[(base, "unlearned-from")])

    materialized = checkpoint_materialize(checkpoint=adapter, directory=tmp_path / "cache")

    assert (tmp_path / "cache" / base.sha256 / "model.safetensors").read_bytes() == (tmp_path / "base" / "model.safetensors").read_bytes()
    assert materialized.base == str(tmp_path / "cache" / base.sha256)
    assert [p.name for p in materialized.adapters] == [adapter.sha256]


def test_the_orphan_sweep_removes_unreferenced_objects_and_temporary_keys_only(model, user, tmp_path, s3_bucket, s3_client):
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "c"), actor=user)
    orphan = hashlib.sha256(b"orphan").hexdigest()
    s3_client.put_object(Bucket=s3_bucket, Key=Blob(sha256=orphan).storage_name, Body=b"orphan")
    s3_client.put_object(Bucket=s3_bucket, Key="incoming/killed-upload", Body=b"half")
    s3_client.create_multipart_upload(Bucket=s3_bucket, Key="incoming/killed-multipart")

    assert blob_store.blobs_sweep_unreferenced(grace_seconds=3600) == []  # too young: a registration may be in flight
    assert blob_store.blobs_sweep_unreferenced(grace_seconds=0) == [orphan]

    assert bucket_keys(s3_client, s3_bucket) == sorted(item.blob.storage_name for item in checkpoint.files.all())
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


# flush truncates every table: on PostgreSQL not inside the test's transaction, whose deferred
# foreign-key checks are still pending ("cannot TRUNCATE ... pending trigger events")
@pytest.mark.django_db(transaction=True)
def test_a_bundle_exported_from_the_bucket_imports_into_an_empty_bucket(project, model, user, tmp_path, s3_bucket, s3_client):
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "c"), actor=user)
    hashes = sorted(Blob.objects.values_list("sha256", flat=True))
    bundle.project_export(project=project, path=tmp_path / "safety.tar.gz", actor=None)
    call_command("flush", interactive=False, verbosity=0)
    for key in bucket_keys(s3_client, s3_bucket):
        s3_client.delete_object(Bucket=s3_bucket, Key=key)

    bundle.project_import(path=tmp_path / "safety.tar.gz", memberships=True)

    assert Project.objects.get().slug == "safety"
    assert sorted(Blob.objects.values_list("sha256", flat=True)) == hashes
    assert bucket_keys(s3_client, s3_bucket) == sorted(Blob(sha256=sha).storage_name for sha in hashes)
    for blob in Blob.objects.all():
        blob_store.blob_read_bytes(blob)  # verified against its hash


def test_blobs_back_up_to_a_folder_and_restore_into_an_emptied_bucket(model, user, tmp_path, s3_bucket, s3_client, capsys):
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "c"), actor=user)

    call_command("backup_blobs", str(tmp_path / "backup"))
    call_command("backup_blobs", str(tmp_path / "backup"))
    for key in bucket_keys(s3_client, s3_bucket):
        s3_client.delete_object(Bucket=s3_bucket, Key=key)
    call_command("restore_blobs", str(tmp_path / "backup"))

    assert capsys.readouterr().out.splitlines() == [
        f"Backed up blobs to {tmp_path / 'backup'}: 3 copied, 0 already there",
        f"Backed up blobs to {tmp_path / 'backup'}: 0 copied, 3 already there",
        f"Restored blobs from {tmp_path / 'backup'}: 3 in the store, 0 missing, 0 damaged",
    ]
    assert len(bucket_keys(s3_client, s3_bucket)) == 3
    for blob in Blob.objects.all():
        blob_store.blob_read_bytes(blob)


def _unreachable_store(settings, monkeypatch):
    from django.core.files.storage import storages

    from tests.s3_server import CREDENTIALS

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.STORAGES = {**settings.STORAGES, "artifacts": s3_storage_settings(endpoint_url=closed, bucket="lethe-gone", max_attempts=1)}
    storages._storages.pop("artifacts", None)


def test_an_unreachable_object_store_refuses_the_upload_clearly_and_saves_nothing(model, api_client, user, tmp_path, settings, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _unreachable_store(settings, monkeypatch)
    folder = write_full(tmp_path / "full")

    with pytest.raises(ObjectStoreUnavailable, match="The object store is unreachable, so Lethe could not look up a blob"):
        services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    response = api_client.post(f"{CHECKPOINTS}/", {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in folder.iterdir()}, format="multipart")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "object_store_unavailable"
    assert Blob.objects.count() == 0 and Checkpoint.objects.count() == 0
    assert [error.id for error in checks.artifact_store_usable(None)] == ["lethe.E003"]


def test_the_deploy_check_passes_for_a_reachable_bucket_and_names_a_missing_one(s3_bucket, settings, s3_endpoint):
    from django.core.files.storage import storages

    assert checks.artifact_store_usable(None) == []

    settings.STORAGES = {**settings.STORAGES, "artifacts": s3_storage_settings(endpoint_url=s3_endpoint, bucket="lethe-no-such-bucket")}
    storages._storages.pop("artifacts", None)
    [error] = checks.artifact_store_usable(None)
    assert (error.id, error.msg) == (
        "lethe.E003",
        "The artifact bucket is not usable: The object store refused to reach the bucket "
        "(bucket 'lethe-no-such-bucket': 404 Not Found). Check LETHE_S3_BUCKET, the credentials and the bucket policy.",
    )


def test_on_a_folder_store_a_file_download_streams_through_verified_with_its_digest(model, user, api_client, tmp_path, settings):
    settings.LETHE_ARTIFACT_REDIRECT_BYTES = 1  # redirects exist only for a bucket
    folder = write_full(tmp_path / "c")
    services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    weights = (folder / "model.safetensors").read_bytes()

    response = api_client.get(f"{CHECKPOINTS}/1/files/model.safetensors")
    missing = api_client.get(f"{CHECKPOINTS}/1/files/nothing.json")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == weights
    assert response["X-Lethe-Sha256"] == hashlib.sha256(weights).hexdigest()
    assert response["Content-Length"] == str(len(weights))
    assert missing.status_code == 404
