"""Content-addressed blob store.

Every file is stored once under its sha256 through Django's storage API (the ``artifacts``
storage), streamed in chunks so memory does not grow with file size, and verified against its
hash whenever it is read back.

Files the server wrote itself (uploads, extracted archive members) arrive as ``ReceivedFile``:
hashed while their bytes were written, in the spool folder on the store's own filesystem, so
storing one is a rename rather than a second read and a copy. With a bucket for a store, an
uploaded file arrives as ``ReceivedObject`` instead: hashed while it streamed into a temporary
key of the bucket, so storing it is a server-side copy and the web machine's disk is not used.
"""

import errno
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.db import IntegrityError, transaction

from core.errors import LetheError
from versions import object_store
from versions.hashing import OverlappedSha256
from versions.models import Blob


# 1 MiB: large enough that per-chunk costs (a syscall, a thread hand-off, a WSGI write) are
# small, small enough that the copies a chunk goes through stay in the CPU cache; measured
# against 256 KiB, 2, 4 and 8 MiB on the upload and download paths (bench_artifacts.py).
CHUNK = 1024 * 1024
SPOOL_FOLDER = "incoming"


class BlobCorrupted(LetheError):
    status_code = 500
    code = "blob_corrupted"


def artifact_storage():
    return storages["artifacts"]


def _local_storage(storage):
    """The storage when its files are plain local files that can be renamed into place."""
    return storage if isinstance(storage, FileSystemStorage) else None


def spool_directory():
    """Where files on their way into the store are written: a folder inside a local artifact
    store (the same filesystem, so they are moved in by a rename), else the upload temp folder."""
    local = _local_storage(artifact_storage())
    path = Path(local.path(SPOOL_FOLDER)) if local else Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ReceivedFile:
    """A local file this server wrote from bytes it received, with the sha256 and size it
    computed from those same bytes while writing them (never a client's claim).

    It belongs to the request that wrote it, so storing it may move it into the store. Usable
    wherever a path is (os.fspath)."""

    path: Path
    sha256: str
    size: int

    def __fspath__(self):
        return os.fspath(self.path)


@dataclass(frozen=True)
class ReceivedObject:
    """An uploaded file this server streamed into a temporary key of the bucket, with the sha256
    and size it computed from those same bytes while sending them. The request that received
    it deletes the temporary key when it ends; storing it copies it to its content address."""

    name: str
    sha256: str
    size: int

    def read_head(self, length=None):
        """The first ``length`` bytes (all with None), read back from the bucket."""
        return object_store.read_head(artifact_storage(), self.name, None if length is None else min(length, self.size))


# ---------------------------------------------------------------- blobs


def sha256_of_path(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def blob_stored(storage, name) -> bool:
    """Whether the store holds an object under ``name`` (a folder or a bucket)."""
    return object_store.exists(storage, name) if object_store.object_storage(storage) else storage.exists(name)


def _blob_record(sha256, size, write):
    """Store bytes under their hash unless already there, then make sure the row exists."""
    existing = Blob.objects.filter(pk=sha256).first()
    storage = artifact_storage()
    name = Blob(sha256=sha256, size=size).storage_name
    present = blob_stored(storage, name)
    if existing is not None and present:
        return existing
    if not present:
        write(storage, name)
    try:
        with transaction.atomic():
            blob, _ = Blob.objects.get_or_create(sha256=sha256, defaults={"size": size})
    except IntegrityError:  # a concurrent writer stored the same content first
        blob = Blob.objects.get(pk=sha256)
    return blob


def _copy_into(storage, name, path, *, sha256, size):
    with open(path, "rb") as handle:
        if object_store.object_storage(storage):
            # Into the bucket under a temporary key while hashed, then under its address.
            return object_store.upload_whole(storage, name, handle, sha256=sha256, size=size)
        storage.save(name, File(handle))


def _move_into(storage, name, received):
    """Rename a received file into a local store; copy when the rename cannot be done (another
    filesystem, or a storage that is not local files)."""
    local = _local_storage(storage)
    if local is None:
        return _copy_into(storage, name, received, sha256=received.sha256, size=received.size)
    destination = Path(local.path(name))
    destination.parent.mkdir(parents=True, exist_ok=True)
    if local.file_permissions_mode is not None:
        os.chmod(received, local.file_permissions_mode)
    # The orphan sweep's grace period counts from storing, not from the upload's last byte.
    os.utime(received)
    try:
        os.replace(received, destination)  # atomic: the blob name never shows a partial file
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_into(storage, name, received, sha256=received.sha256, size=received.size)


def blob_put_path(path):
    """Store a local file under its sha256. A ``ReceivedFile`` is already hashed and is moved in;
    any other path is read to hash it, then copied. A ``ReceivedObject`` (already in the bucket,
    already hashed) is copied to its address server-side."""
    if isinstance(path, ReceivedObject):
        return _blob_record(path.sha256, path.size, lambda storage, name: object_store.land(storage, path.name, name))
    if isinstance(path, ReceivedFile) and os.path.getsize(path) == path.size:
        return _blob_record(path.sha256, path.size, lambda storage, name: _move_into(storage, name, path))
    sha256, size = sha256_of_path(path)
    return _blob_record(sha256, size, lambda storage, name: _copy_into(storage, name, path, sha256=sha256, size=size))


def blob_put_bytes(data):
    import io

    from django.core.files.base import ContentFile

    sha256 = hashlib.sha256(data).hexdigest()

    def write(storage, name):
        if object_store.object_storage(storage):
            return object_store.upload_whole(storage, name, io.BytesIO(data), sha256=sha256, size=len(data))
        storage.save(name, ContentFile(data))

    return _blob_record(sha256, len(data), write)


class VerifyingReader:
    """A file-like reader that hashes what it hands out and fails on a mismatch.

    The check runs when the blob's last byte is read, before that read returns, so a reader that
    stops at the blob's size (tarfile does) is checked too, and a damaged blob never comes out
    whole: the caller gets everything but the last chunk, then BlobCorrupted."""

    def __init__(self, blob):
        self.blob = blob
        storage = artifact_storage()
        if object_store.object_storage(storage):
            # The object's body streams; S3File would download it all to a temporary file first.
            self._handle = object_store.open_stream(storage, blob.storage_name)
        else:
            self._handle = storage.open(blob.storage_name, "rb")
        self._digest = hashlib.sha256()
        self._size = 0

    def read(self, size=-1):
        chunk = self._handle.read(size)
        self._digest.update(chunk)
        self._size += len(chunk)
        if not chunk or size is None or size < 0 or self._size >= self.blob.size:
            self._check(self._digest.hexdigest(), self._size)
        return chunk

    def _check(self, sha256, size):
        if sha256 != self.blob.sha256 or size != self.blob.size:
            raise BlobCorrupted(
                f"Stored blob {self.blob.sha256} failed verification (read {size} bytes with hash {sha256}); the artifact store is damaged and this data is not served."
            )

    def __iter__(self):
        """The whole blob in chunks. Each chunk is hashed on a worker thread while the caller
        sends or writes the one before it, and the last chunk is held back until the hash of
        the whole blob matched."""
        if self._size:
            raise ValueError("Iterate a VerifyingReader from its start.")
        with OverlappedSha256() as hasher:
            held = None
            while chunk := self._handle.read(CHUNK):
                hasher.update(chunk)
                if held is not None:
                    yield held
                held = chunk
                # A file that grew past its recorded size is damaged too; do not stream it on.
                if hasher.size > self.blob.size:
                    break
            self._size = hasher.size
            self._check(hasher.hexdigest(), hasher.size)
        if held is not None:
            yield held

    def close(self):
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def blob_open(blob):
    return VerifyingReader(blob)


def blob_read_bytes(blob):
    with blob_open(blob) as reader:
        return reader.read()


def blob_copy_to(blob, destination):
    """Write a blob to a local path, verified; a corrupted blob leaves no file behind."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    try:
        with blob_open(blob) as reader, open(partial, "wb") as out:
            for chunk in reader:
                out.write(chunk)
        os.replace(partial, destination)
    finally:
        if partial.exists():
            partial.unlink()
    return destination


# ---------------------------------------------------------------- orphaned files


def blobs_sweep_unreferenced(*, grace_seconds=None):
    """Delete stored blob files that no Blob row names; returns their hashes.

    Files are written before the registering transaction commits (hashing and storing gigabytes
    inside a transaction would hold locks for minutes). If that transaction rolls back, or the
    process dies before the commit, the file stays without a row. Only files older than the grace
    period (LETHE_ORPHAN_BLOB_GRACE_SECONDS) go, so a registration in flight is never swept.
    Leftovers of killed uploads in the spool folder go after the same grace period."""
    from datetime import timedelta

    from django.utils import timezone

    grace = settings.LETHE_ORPHAN_BLOB_GRACE_SECONDS if grace_seconds is None else grace_seconds
    storage = artifact_storage()
    cutoff = timezone.now() - timedelta(seconds=grace)
    if object_store.object_storage(storage):
        return _bucket_sweep(storage, cutoff)
    _spool_sweep(storage, cutoff.timestamp())
    if not storage.exists("blobs"):
        return []
    stored = {}
    for first in storage.listdir("blobs")[0]:
        for second in storage.listdir(f"blobs/{first}")[0]:
            for name in storage.listdir(f"blobs/{first}/{second}")[1]:
                stored[name] = f"blobs/{first}/{second}/{name}"
    known = set(Blob.objects.filter(pk__in=list(stored)).values_list("sha256", flat=True))
    removed = []
    for sha256, name in sorted(stored.items()):
        if sha256 not in known and storage.get_modified_time(name) <= cutoff:
            storage.delete(name)
            removed.append(sha256)
    return removed


def _spool_sweep(storage, cutoff):
    """Remove what a killed process left in a local store's spool folder (a request deletes its
    own upload and extraction files otherwise): entries untouched since ``cutoff`` (a timestamp)."""
    local = _local_storage(storage)
    spool = Path(local.path(SPOOL_FOLDER)) if local else None
    if spool is None or not spool.is_dir():
        return
    for entry in spool.iterdir():
        try:
            folder = entry.is_dir() and not entry.is_symlink()
            touched = [entry.lstat().st_mtime] + ([p.lstat().st_mtime for p in entry.rglob("*")] if folder else [])
            if max(touched) > cutoff:
                continue
            if folder:
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # its request finished meanwhile
            continue


def _bucket_sweep(storage, cutoff):
    """The orphan sweep in a bucket: one paginated listing instead of a walk of folders, and the
    temporary keys and unfinished multipart uploads of killed uploads after the same grace."""
    for name, modified, _size in list(object_store.list_objects(storage, object_store.TEMPORARY_PREFIX)):
        if modified <= cutoff:
            object_store.delete(storage, name)
    object_store.abort_stale_uploads(storage, cutoff)
    stored = {name.rsplit("/", 1)[-1]: (name, modified) for name, modified, _size in object_store.list_objects(storage, "blobs/")}
    known = set()
    hashes = list(stored)
    for start in range(0, len(hashes), 500):  # bounded IN lists
        known.update(Blob.objects.filter(pk__in=hashes[start : start + 500]).values_list("sha256", flat=True))
    removed = []
    for sha256, (name, modified) in sorted(stored.items()):
        if sha256 not in known and modified <= cutoff:
            object_store.delete(storage, name)
            removed.append(sha256)
    return removed
