"""Backup and restore of the blob store to and from a local folder, the same for a filesystem
store and a bucket: the folder keeps the store's layout (blobs/ab/cd/<sha256>), so a backup is
incremental (blobs never change; one already in the folder is skipped) and rsync-able, and every
blob is verified against its sha256 in both directions.

Take the database dump first, then the blobs (docs/deploy.md): every blob the dump names exists
by then."""

import os
from pathlib import Path

from versions.blob_store import blob_copy_to, blob_put_path, sha256_of_path
from versions.models import Blob


def blobs_backup(*, folder):
    """Copy every blob the database names into ``folder``; returns (copied, already there)."""
    folder = Path(folder)
    copied = present = 0
    for blob in Blob.objects.order_by("sha256").iterator(chunk_size=1000):
        target = folder / blob.storage_name
        if target.exists() and target.stat().st_size == blob.size:
            present += 1
            continue
        blob_copy_to(blob, target)  # verified; a damaged blob raises BlobCorrupted and leaves no file
        copied += 1
    return copied, present


def blobs_restore(*, folder):
    """Put every blob of ``folder`` that the database names back into the store, each verified
    against its name; returns (restored or already stored, missing from the folder, damaged)."""
    folder = Path(folder)
    restored, missing, damaged = 0, [], []
    for blob in Blob.objects.order_by("sha256").iterator(chunk_size=1000):
        source = folder / blob.storage_name
        if not source.is_file():
            missing.append(blob.sha256)
            continue
        sha256, size = sha256_of_path(source)
        if sha256 != blob.sha256 or size != blob.size:
            damaged.append(blob.sha256)
            continue
        blob_put_path(os.fspath(source))  # stores it unless the store already holds it
        restored += 1
    return restored, missing, damaged
