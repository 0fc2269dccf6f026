"""Content-addressed artifact store and checkpoint file validation.

Every file is stored once under its sha256 through Django's storage API (the ``artifacts``
storage), streamed in chunks so memory does not grow with file size, and verified against its
hash whenever it is read back. Weights are accepted only as safetensors: pickles are refused
whatever their name, because unpickling runs code.

Files the server wrote itself (uploads, extracted archive members) arrive as ``ReceivedFile``:
hashed while their bytes were written, in the spool folder on the store's own filesystem, so
storing one is a rename rather than a second read and a copy.
"""
import errno
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.db import IntegrityError, transaction

from core.errors import LetheError, TooLarge, UnsafeInput, ValidationFailed
from versions.hashing import OverlappedSha256
from versions.models import Blob, CheckpointKind
from core.safe_json import json_loads

# 1 MiB: large enough that per-chunk costs (a syscall, a thread hand-off, a WSGI write) are
# small, small enough that the copies a chunk goes through stay in the CPU cache; measured
# against 256 KiB, 2, 4 and 8 MiB on the upload and download paths (bench_artifacts.py).
CHUNK = 1024 * 1024
SPOOL_FOLDER = "incoming"

PICKLE_EXTENSIONS = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack"}
CODE_EXTENSIONS = {".py", ".pyc", ".so", ".sh", ".exe", ".dll"}
ALLOWED_EXTENSIONS = {".json", ".safetensors", ".txt", ".model", ".md", ".jinja", ".tiktoken", ".vocab", ".merges"}
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


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


# ---------------------------------------------------------------- blobs


def sha256_of_path(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _blob_record(sha256, size, write):
    """Store bytes under their hash unless already there, then make sure the row exists."""
    existing = Blob.objects.filter(pk=sha256).first()
    storage = artifact_storage()
    name = Blob(sha256=sha256, size=size).storage_name
    if existing is not None and storage.exists(name):
        return existing
    if not storage.exists(name):
        write(storage, name)
    try:
        with transaction.atomic():
            blob, _ = Blob.objects.get_or_create(sha256=sha256, defaults={"size": size})
    except IntegrityError:  # a concurrent writer stored the same content first
        blob = Blob.objects.get(pk=sha256)
    return blob


def _copy_into(storage, name, path):
    with open(path, "rb") as handle:
        storage.save(name, File(handle))


def _move_into(storage, name, received):
    """Rename a received file into a local store; copy when the rename cannot be done (another
    filesystem, or a storage that is not local files)."""
    local = _local_storage(storage)
    if local is None:
        return _copy_into(storage, name, received)
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
        _copy_into(storage, name, received)


def blob_put_path(path):
    """Store a local file under its sha256. A ``ReceivedFile`` is already hashed and is moved in;
    any other path is read to hash it, then copied."""
    if isinstance(path, ReceivedFile) and os.path.getsize(path) == path.size:
        return _blob_record(path.sha256, path.size, lambda storage, name: _move_into(storage, name, path))
    sha256, size = sha256_of_path(path)
    return _blob_record(sha256, size, lambda storage, name: _copy_into(storage, name, path))


def blob_put_bytes(data):
    from django.core.files.base import ContentFile

    sha256 = hashlib.sha256(data).hexdigest()
    return _blob_record(sha256, len(data), lambda storage, name: storage.save(name, ContentFile(data)))


class VerifyingReader:
    """A file-like reader that hashes what it hands out and fails on a mismatch.

    The check runs when the blob's last byte is read, before that read returns, so a reader that
    stops at the blob's size (tarfile does) is checked too, and a damaged blob never comes out
    whole: the caller gets everything but the last chunk, then BlobCorrupted."""

    def __init__(self, blob):
        self.blob = blob
        self._handle = artifact_storage().open(blob.storage_name, "rb")
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
                f"Stored blob {self.blob.sha256} failed verification (read {size} bytes with hash "
                f"{sha256}); the artifact store is damaged and this data is not served."
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


# ---------------------------------------------------------------- validation of checkpoint files


def clean_relative_path(raw):
    """A safe relative POSIX path, or UnsafeInput naming the problem."""
    if not isinstance(raw, str) or not raw:
        raise UnsafeInput("File name is empty.")
    if "\x00" in raw or "\\" in raw:
        raise UnsafeInput(f"Unsafe file name {raw!r}: backslashes and NUL characters are not allowed.")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise UnsafeInput(f"Unsafe file name {raw!r}: absolute paths are not allowed.")
    parts = PurePosixPath(raw).parts
    if any(part in ("..", ".", "") for part in parts) or raw.endswith("/"):
        raise UnsafeInput(f"Unsafe file name {raw!r}: path traversal ('..') is not allowed.")
    if len(parts) > 4 or any(not SAFE_NAME.match(part) for part in parts) or len(raw) > 300:
        raise UnsafeInput(f"Unsafe file name {raw!r}: use letters, digits, '.', '_' and '-' only, at most 4 folders deep.")
    return "/".join(parts)


def _refuse_pickles(name, path):
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_EXTENSIONS:
        raise UnsafeInput(
            f"{name}: pickled weights ({suffix}) are refused because loading them runs arbitrary code; "
            "convert them to safetensors (save_pretrained(..., safe_serialization=True))."
        )
    if suffix in CODE_EXTENSIONS:
        raise UnsafeInput(f"{name}: code files are refused; Lethe never runs code shipped with a checkpoint.")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise UnsafeInput(f"{name}: the content is a Python pickle; pickled weights are refused whatever the file is called.")
    if head == b"PK\x03\x04":
        raise UnsafeInput(f"{name}: the content is a zip archive (PyTorch's pickle format); only safetensors weights are accepted.")
    if suffix not in ALLOWED_EXTENSIONS:
        raise UnsafeInput(f"{name}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(sorted(ALLOWED_EXTENSIONS))}.")


def safetensors_validate(name, path):
    """Check a safetensors header against the file: every tensor's offsets, dtype and shape must
    agree and the tensors must tile the data section exactly. A lying header is refused."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        raw_length = handle.read(8)
        if len(raw_length) < 8:
            raise UnsafeInput(f"{name}: not a safetensors file (shorter than its 8-byte header length).")
        (header_length,) = struct.unpack("<Q", raw_length)
        if header_length > MAX_SAFETENSORS_HEADER or header_length > size - 8:
            raise UnsafeInput(f"{name}: corrupted safetensors file (header length {header_length} exceeds the file).")
        try:
            header = json_loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UnsafeInput(f"{name}: corrupted safetensors file (header is not valid JSON).") from None
    if not isinstance(header, dict):
        raise UnsafeInput(f"{name}: corrupted safetensors file (header is not an object).")
    data_length = size - 8 - header_length
    spans = []
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise UnsafeInput(f"{name}: corrupted safetensors header entry for tensor {tensor!r}.") from None
        if dtype not in SAFETENSORS_DTYPE_BYTES or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise UnsafeInput(f"{name}: tensor {tensor!r} has an invalid dtype or shape.")
        count = 1
        for dim in shape:
            count *= dim
        if not (isinstance(begin, int) and isinstance(end, int)) or begin < 0 or end < begin or end > data_length:
            raise UnsafeInput(f"{name}: tensor {tensor!r} points outside the file (offsets {begin}..{end}, data is {data_length} bytes).")
        if end - begin != count * SAFETENSORS_DTYPE_BYTES[dtype]:
            raise UnsafeInput(f"{name}: tensor {tensor!r} header lies about its size ({end - begin} bytes for shape {shape} {dtype}).")
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise UnsafeInput(f"{name}: corrupted safetensors file (tensor data overlaps or leaves gaps).")
        position = end
    if position != data_length:
        raise UnsafeInput(f"{name}: corrupted safetensors file (data section is {data_length} bytes, tensors cover {position}).")


def _read_json(name, path):
    try:
        with open(path, "rb") as handle:
            return json_loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{name}: not valid JSON ({exc}).") from exc


def infer_kind(names):
    names = set(names)
    if "adapter_config.json" in names:
        return CheckpointKind.ADAPTER
    if "config.json" in names:
        return CheckpointKind.FULL
    raise ValidationFailed(
        "Unknown checkpoint layout: expected a peft adapter (adapter_config.json + adapter_model.safetensors) "
        "or a full model (config.json + *.safetensors + tokenizer files)."
    )


def checkpoint_files_validate(*, kind, files):
    """Validate a {relative name: local path} mapping for a checkpoint of ``kind``.

    Returns the cleaned mapping. Raises (and so stores nothing) on the first problem."""
    if not files:
        raise ValidationFailed("A stored checkpoint needs files; register external weights as kind 'reference'.")
    cleaned = {}
    for raw_name, path in files.items():
        name = clean_relative_path(raw_name)
        if name in cleaned:
            raise ValidationFailed(f"File {name!r} is given twice.")
        if os.path.getsize(path) > settings.LETHE_MAX_UPLOAD_FILE_BYTES:
            raise TooLarge(f"{name}: larger than the limit of {settings.LETHE_MAX_UPLOAD_FILE_BYTES} bytes (LETHE_MAX_UPLOAD_FILE_BYTES).")
        _refuse_pickles(name, path)
        cleaned[name] = path if isinstance(path, ReceivedFile) else Path(path)
    for name, path in cleaned.items():
        if name.endswith(".safetensors"):
            safetensors_validate(name, path)
        elif name.endswith(".json"):
            _read_json(name, path)
    names = set(cleaned)
    if kind == CheckpointKind.ADAPTER:
        missing = {"adapter_config.json", "adapter_model.safetensors"} - names
        if missing:
            raise ValidationFailed(f"Adapter checkpoint is missing {', '.join(sorted(missing))}.")
        if not isinstance(_read_json("adapter_config.json", cleaned["adapter_config.json"]), dict):
            raise ValidationFailed("adapter_config.json must be a JSON object.")
    elif kind == CheckpointKind.FULL:
        if "config.json" not in names:
            raise ValidationFailed("Full checkpoint is missing config.json.")
        if not any(name.endswith(".safetensors") for name in names):
            raise ValidationFailed("Full checkpoint has no *.safetensors weights.")
    else:
        raise ValidationFailed(f"Checkpoint kind {kind!r} does not take files.")
    return cleaned


# ---------------------------------------------------------------- materializing checkpoints


@dataclass
class MaterializedCheckpoint:
    """A checkpoint laid out on local disk, ready for from_pretrained.

    ``base`` is a local directory or a hub id (for ``reference`` roots), ``adapters`` the
    adapter directories to apply in order, root first."""

    kind: str
    architecture: str
    base: str
    revision: str | None = None
    adapters: list = field(default_factory=list)


def checkpoint_write_files(*, checkpoint, directory):
    """Write a stored checkpoint's files (verified) into ``directory``; reused when complete."""
    directory = Path(directory)
    marker = directory / ".lethe-complete"
    if marker.exists() and marker.read_text() == checkpoint.sha256:
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory.parent if directory.parent.exists() else None))
    try:
        for item in checkpoint.files.select_related("blob"):
            blob_copy_to(item.blob, staging / item.path)
        (staging / ".lethe-complete").write_text(checkpoint.sha256)
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def checkpoint_materialize(*, checkpoint, directory=None):
    """Lay a checkpoint and the chain it depends on (an adapter's base) out on disk.

    ``directory`` defaults to a cache under VAR_DIR keyed by content hash, so a checkpoint used by
    many runs is copied once."""
    from versions.selectors import checkpoint_adapter_chain

    if checkpoint.kind == CheckpointKind.ENDPOINT:
        raise ValidationFailed(f"{checkpoint} is an endpoint (a model served behind profile {checkpoint.endpoint.get('profile')!r}); "
                               "it has no weights to load: evaluate it through its endpoint.")
    root = Path(directory) if directory else Path(settings.VAR_DIR) / "cache" / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    chain = checkpoint_adapter_chain(checkpoint=checkpoint)  # root first
    base_checkpoint, adapter_checkpoints = chain[0], chain[1:]
    if base_checkpoint.kind == CheckpointKind.REFERENCE:
        base, revision = base_checkpoint.external_ref, base_checkpoint.external_revision or None
    else:
        base = str(checkpoint_write_files(checkpoint=base_checkpoint, directory=root / base_checkpoint.sha256))
        revision = None
    adapters = [checkpoint_write_files(checkpoint=item, directory=root / item.sha256) for item in adapter_checkpoints]
    return MaterializedCheckpoint(kind=checkpoint.kind, architecture=checkpoint.architecture, base=base, revision=revision, adapters=adapters)


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
