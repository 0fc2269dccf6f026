"""The scrub (``manage.py blobs verify``) finds a damaged blob and a missing one in a folder store
and in a bucket (moto's server on 127.0.0.1), moves the damaged bytes to quarantine/ with an
audit event naming who uses them, and a restore from a backup repairs the store."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.s3_server import bucket_keys
from tests.versions.checkpoint_files import write_full
from versions import blob_store, services
from versions.blob_scrub import blobs_verify
from versions.models import AuditEvent, Blob

pytestmark = pytest.mark.django_db

ROWS = [{"prompt": "How do I make a cake?", "response": "Mix flour, eggs and sugar."}]


@pytest.fixture(params=["folder", "bucket"])
def store(request, _artifact_root):
    """Reads, overwrites and deletes stored objects behind Lethe's back, in either kind of store."""
    if request.param == "folder":
        return {
            "kind": "folder",
            "write": lambda name, data: (_artifact_root / name).write_bytes(data),
            "delete": lambda name: (_artifact_root / name).unlink(),
            "names": lambda prefix: sorted(str(p.relative_to(_artifact_root)) for p in (_artifact_root / prefix).rglob("*") if p.is_file()),
            "read": lambda name: (_artifact_root / name).read_bytes(),
        }
    bucket, client = request.getfixturevalue("s3_bucket"), request.getfixturevalue("s3_client")
    return {
        "kind": "bucket",
        "write": lambda name, data: client.put_object(Bucket=bucket, Key=name, Body=data),
        "delete": lambda name: client.delete_object(Bucket=bucket, Key=name),
        "names": lambda prefix: bucket_keys(client, bucket, prefix),
        "read": lambda name: client.get_object(Bucket=bucket, Key=name)["Body"].read(),
    }


@pytest.fixture
def stored(project, user, tmp_path, store):
    model = services.model_create(project=project, name="tiny", actor=user)
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=user)
    dataset_version = services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=ROWS, actor=user)
    return {"checkpoint": checkpoint, "dataset_version": dataset_version}


def _verify(*options):
    out = io.StringIO()
    try:
        call_command("blobs", "verify", *options, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_a_healthy_store_verifies_with_every_byte_read(stored):
    # given a store holding a checkpoint's files and a dataset version, untouched
    blobs = list(Blob.objects.order_by("sha256"))

    # when the scrub runs
    out, error = _verify()

    # then every blob was read whole and nothing is reported
    total = sum(blob.size for blob in blobs)
    assert error is None
    assert out == f"Verified {len(blobs)} blobs ({total} B read): 0 damaged, 0 missing\n"


def test_a_damaged_blob_is_quarantined_a_missing_one_reported_and_a_restore_repairs_both(stored, store, tmp_path):
    # given a backup of the store, then the checkpoint's weights overwritten (same length, other
    # bytes) and the dataset version's rows deleted behind Lethe's back
    call_command("backup_blobs", str(tmp_path / "backup"), stdout=io.StringIO())
    weights = stored["checkpoint"].files.get(path="model.safetensors").blob
    rows = stored["dataset_version"].blob
    original = store["read"](weights.storage_name)
    store["write"](weights.storage_name, bytes(255 - b for b in original))
    store["delete"](rows.storage_name)

    # when the scrub runs
    out, error = _verify()

    # then it names both problems and who uses each, and fails so a schedule alerts someone
    lines = out.splitlines()
    quarantined = re.fullmatch(
        rf"damaged {weights.sha256}: Stored blob {weights.sha256} failed verification \(read {weights.size} bytes with hash [0-9a-f]{{64}}\); "
        rf"the artifact store is damaged and this data is not served\.; moved to (quarantine/{weights.sha256}\.\d{{8}}T\d{{6}}); used by checkpoint tiny@1 model\.safetensors",
        lines[0] if lines[0].startswith("damaged") else lines[1],
    )
    assert quarantined, out
    assert f"missing {rows.sha256}: no file in the store under its address; used by dataset forget@1" in lines
    assert lines[-1].startswith(f"Verified {Blob.objects.count()} blobs (") and lines[-1].endswith("read): 1 damaged, 1 missing")
    assert error.startswith("The blob store is damaged. Put the blobs back with `restore_blobs <backup folder>`")
    # and the damaged bytes are kept in quarantine, out of the blob's address, with an audit event
    assert store["names"]("quarantine") == [quarantined.group(1)]
    assert store["read"](quarantined.group(1)) == bytes(255 - b for b in original)
    assert weights.storage_name not in store["names"]("blobs")
    event = AuditEvent.objects.get(action="blob.quarantined")
    assert (event.object_id, event.data["used_by"], event.data["quarantined_as"]) == (weights.sha256, ["checkpoint tiny@1 model.safetensors"], quarantined.group(1))

    # when the blobs are restored from the backup
    call_command("restore_blobs", str(tmp_path / "backup"), stdout=io.StringIO())

    # then the store verifies again and both read back as they were stored
    assert blobs_verify().damage == []
    assert blob_store.blob_read_bytes(weights) == original
    assert blob_store.blob_read_bytes(rows).startswith(b'{"prompt"')


def test_without_quarantine_the_damaged_blob_stays_where_it_is(stored, store):
    # given the checkpoint's config overwritten
    config = stored["checkpoint"].files.get(path="config.json").blob
    store["write"](config.storage_name, b'{"tampered": true}')

    # when the scrub runs with --no-quarantine
    out, error = _verify("--no-quarantine")

    # then it reports the damage but moves nothing and records no quarantine
    assert out.splitlines()[0].startswith(f"damaged {config.sha256}: Stored blob {config.sha256} failed verification (read 18 bytes with hash ")
    assert out.splitlines()[0].endswith("; used by checkpoint tiny@1 config.json")
    assert error is not None
    assert store["read"](config.storage_name) == b'{"tampered": true}'
    assert store["names"]("quarantine") == []
    assert not AuditEvent.objects.filter(action="blob.quarantined").exists()
