"""The scrub: re-hash every stored blob and take damaged ones out of service.

Every read Lethe makes of a blob is verified (versions.blob_store.VerifyingReader), so damage is
never served or trained on; but it is found only when someone reads that blob, perhaps months
after a disk or a bucket lost it, when the backup that still had it good may be gone. The scrub
reads the whole store on a schedule (``python manage.py blobs verify``: a CronJob, or the
compose file's loop) so damage is found while it can still be repaired.

A damaged blob is moved to ``quarantine/<sha256>.<time>`` in the same store, out of the
content address, so the bytes are kept for inspection and the address is free: the next
upload of the same content, or ``restore_blobs`` from a backup, stores it again (the registry
re-stores a blob whose row exists when its file is missing). Each quarantine is an audit
event (``blob.quarantined``) naming what was wrong and which checkpoints and datasets use it.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import F
from django.utils import timezone

from versions import object_store
from versions.blob_store import BlobCorrupted, artifact_storage, blob_open, blob_stored
from versions.models import Blob, CheckpointFile, DatasetVersion

QUARANTINE_PREFIX = "quarantine/"
BATCH = 500  # blob rows read per statement, in hash order (a keyset walk: memory stays flat)


@dataclass
class BlobDamage:
    sha256: str
    problem: str  # "missing" or "damaged"
    detail: str
    used_by: list[str]  # "checkpoint tiny@2 model.safetensors", "dataset forget@1"
    quarantined_as: str = ""  # the store name it was moved to ("" when missing or not moved)


@dataclass
class ScrubReport:
    checked: int = 0
    bytes_read: int = 0
    damage: list[BlobDamage] = field(default_factory=list)


def _read_through(blob) -> int:
    """Read ``blob`` whole through the verifying reader; BlobCorrupted on a mismatch."""
    size = 0
    with blob_open(blob) as reader:
        for chunk in reader:
            size += len(chunk)
    return size


def _users(sha256) -> list[str]:
    files = CheckpointFile.objects.filter(blob_id=sha256).order_by("checkpoint_id", "path")
    checkpoints = [f"checkpoint {model}@{number} {path}" for model, number, path in files.values_list("checkpoint__model__name", "checkpoint__number", "path")]
    datasets = [f"dataset {name}@{number}" for name, number in DatasetVersion.objects.filter(blob_id=sha256).order_by("pk").values_list(F("dataset__name"), "number")]
    return checkpoints + datasets


def _quarantine(storage, blob) -> str:
    """Move the blob's stored bytes out of its address, keeping them; returns the new name."""
    target = f"{QUARANTINE_PREFIX}{blob.sha256}.{timezone.now():%Y%m%dT%H%M%S}"
    if object_store.object_storage(storage):
        object_store.move(storage, blob.storage_name, target)
        return target
    destination = Path(storage.path(target))
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(storage.path(blob.storage_name), destination)  # same filesystem: a rename
    return target


def blobs_verify(*, quarantine=True) -> ScrubReport:
    """Re-hash every blob the database names; report (and, with ``quarantine``, move aside) the
    missing and damaged ones."""
    from versions.services import audit_record

    storage = artifact_storage()
    report = ScrubReport()
    after = ""
    while batch := list(Blob.objects.filter(sha256__gt=after).order_by("sha256")[:BATCH]):
        for blob in batch:
            damage = None
            if not blob_stored(storage, blob.storage_name):
                damage = BlobDamage(blob.sha256, "missing", "no file in the store under its address", _users(blob.sha256))
            else:
                try:
                    report.bytes_read += _read_through(blob)
                except BlobCorrupted as exc:
                    damage = BlobDamage(blob.sha256, "damaged", str(exc), _users(blob.sha256))
            report.checked += 1
            if damage is not None:
                if quarantine and damage.problem == "damaged":
                    damage.quarantined_as = _quarantine(storage, blob)
                    audit_record(
                        project=None,
                        actor=None,
                        action="blob.quarantined",
                        object_type="blob",
                        object_id=blob.sha256,
                        data={"detail": damage.detail, "used_by": damage.used_by, "quarantined_as": damage.quarantined_as},
                    )
                report.damage.append(damage)
        after = batch[-1].sha256
    return report
