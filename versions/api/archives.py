"""Checkpoint files in and out of the API: uploaded parts spooled to disk, archives extracted
safely, and stored checkpoints streamed out as a tar.

Extraction trusts nothing in the archive: member names go through the same cleaning as uploaded
names, only regular files are accepted (no links, devices or fifos), and the member count, the
expanded size and the compression ratio are bounded while the bytes are written, not only as
declared in headers (which can lie).
"""

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings

from versions.api.uploads import received_file
from versions.blob_store import CHUNK, ReceivedFile, blob_open, spool_directory
from versions.checkpoint_files import clean_relative_path
from core.errors import TooLarge, UnsafeInput, ValidationFailed
from versions.hashing import OverlappedSha256

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
MAX_COMPRESSION_RATIO = 200


def max_archive_members():
    return settings.LETHE_MAX_ARCHIVE_MEMBERS


class Scratch:
    """One request's temporary folder in the spool folder, made on first use (``scratch()``)
    and removed with everything in it at the end: file parts that streamed into a bucket need
    none, so such a request writes nothing to the local disk."""

    def __init__(self):
        self._path = None

    def __call__(self):
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix="lethe-upload-", dir=spool_directory()))
        return self._path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def upload_spool(uploaded, scratch, index):
    """The uploaded file's bytes as the upload handler received them, hashed: a ReceivedFile
    (its spool file) or a ReceivedObject (its temporary key in the bucket); else Django's
    temporary file, else (kept in memory) written out into the ``scratch`` folder."""
    if uploaded.size > settings.LETHE_MAX_UPLOAD_FILE_BYTES:
        raise TooLarge(f"{uploaded.name}: {uploaded.size} bytes is over the limit of {settings.LETHE_MAX_UPLOAD_FILE_BYTES} bytes (LETHE_MAX_UPLOAD_FILE_BYTES).")
    if (received := received_file(uploaded)) is not None:
        return received
    if hasattr(uploaded, "temporary_file_path"):
        return Path(uploaded.temporary_file_path())
    path = scratch() / f"upload-{index}"
    with open(path, "wb") as out:
        for chunk in uploaded.chunks(CHUNK):
            out.write(chunk)
    return path


def archive_format(filename):
    lowered = (filename or "").lower()
    if lowered.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if lowered.endswith(".tar"):
        return "tar"
    if lowered.endswith(".zip"):
        return "zip"
    raise ValidationFailed(
        f"Unsupported archive {filename!r}: expected a name ending in {', '.join(ARCHIVE_SUFFIXES)}.",
        fields={"archive": ["Unsupported archive type."]},
    )


class _Budget:
    """Counts expanded bytes against the size limit and the compression ratio."""

    def __init__(self, *, archive_bytes):
        self.archive_bytes = max(archive_bytes, 1)
        self.max_bytes = settings.LETHE_MAX_ARCHIVE_EXPANDED_BYTES
        self.expanded = 0

    def spend(self, count, name):
        self.expanded += count
        if self.expanded > self.max_bytes:
            raise TooLarge(f"Archive expands to more than {self.max_bytes} bytes (LETHE_MAX_ARCHIVE_EXPANDED_BYTES), reached at {name}; nothing was stored.")
        if self.expanded > MAX_COMPRESSION_RATIO * self.archive_bytes:
            raise UnsafeInput(
                f"Archive expands more than {MAX_COMPRESSION_RATIO}:1 ({self.archive_bytes} bytes compressed), reached at {name}: refused as an archive bomb; nothing was stored."
            )


def _member_name(raw):
    name = raw[2:] if raw.startswith("./") else raw
    if name.startswith("/") or raw.startswith("/"):
        raise UnsafeInput(f"Archive member {raw!r}: absolute paths are not allowed; nothing was stored.")
    if ".." in name.split("/"):
        raise UnsafeInput(f"Archive member {raw!r}: path traversal ('..') is not allowed; nothing was stored.")
    return name.rstrip("/")


def _copy(source, destination, budget, name):
    """Write one member out, hashing it on the way, so registering it needs no second read."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as out, OverlappedSha256() as hasher:
        while chunk := source.read(CHUNK):
            budget.spend(len(chunk), name)
            hasher.update(chunk)
            out.write(chunk)
        return ReceivedFile(path=destination, sha256=hasher.hexdigest(), size=hasher.size)


def _strip_common_folder(names):
    """``model/config.json, model/model.safetensors`` -> the folder ``model/`` is dropped, so an
    archive of a folder and an archive of its contents register the same checkpoint."""
    firsts = {name.split("/", 1)[0] for name in names}
    if len(firsts) == 1 and all("/" in name for name in names):
        prefix = firsts.pop() + "/"
        return {name: name[len(prefix) :] for name in names}
    return {name: name for name in names}


def archive_extract(*, path, filename, directory):
    """Extract an uploaded archive into ``directory`` and return {relative name: local path}.

    Raises UnsafeInput / TooLarge / ValidationFailed on the first problem; the caller discards
    ``directory`` then, so nothing half-extracted is kept."""
    fmt = archive_format(filename)
    directory = Path(directory)
    budget = _Budget(archive_bytes=os.path.getsize(path))
    limit = max_archive_members()
    extracted = {}
    try:
        if fmt == "zip":
            _extract_zip(path, directory, budget, limit, extracted)
        else:
            _extract_tar(path, "r:gz" if fmt == "tar.gz" else "r:", directory, budget, limit, extracted)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValidationFailed(f"{filename}: not a readable {fmt} archive ({exc}).", fields={"archive": ["Unreadable archive."]}) from exc
    if not extracted:
        raise ValidationFailed(f"{filename}: the archive holds no files.", fields={"archive": ["Empty archive."]})
    renames = _strip_common_folder(list(extracted))
    files = {}
    for name, local in extracted.items():
        files[clean_relative_path(renames[name])] = local
    return files


def _count(extracted, limit, raw):
    if len(extracted) >= limit:
        raise UnsafeInput(f"Archive has more than {limit} members (at {raw!r}); nothing was stored.")


def _extract_zip(path, directory, budget, limit, extracted):
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > limit:
            raise UnsafeInput(f"Archive has {len(infos)} members, more than the limit of {limit}; nothing was stored.")
        for info in infos:
            name = _member_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeInput(f"Archive member {info.filename!r} is a symbolic link; links are refused; nothing was stored.")
            if info.is_dir():
                continue
            # Zip writers often leave the file-type bits unset; only a set, non-regular type is refused.
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                raise UnsafeInput(f"Archive member {info.filename!r} is not a regular file; nothing was stored.")
            _count(extracted, limit, info.filename)
            clean_relative_path(name)
            local = directory / f"member-{len(extracted)}"
            with archive.open(info) as source:
                extracted[name] = _copy(source, local, budget, info.filename)


def _extract_tar(path, mode, directory, budget, limit, extracted):
    with tarfile.open(path, mode) as archive:
        seen = 0
        for member in archive:
            seen += 1
            if seen > limit:
                raise UnsafeInput(f"Archive has more than {limit} members; nothing was stored.")
            name = _member_name(member.name)
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                raise UnsafeInput(f"Archive member {member.name!r} is a link; links are refused; nothing was stored.")
            if not member.isreg():
                raise UnsafeInput(f"Archive member {member.name!r} is a device, fifo or other special file; nothing was stored.")
            clean_relative_path(name)
            local = directory / f"member-{len(extracted)}"
            source = archive.extractfile(member)
            extracted[name] = _copy(source, local, budget, member.name)


def discard(directory):
    shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- download


def _tar_header(path, size, mtime):
    info = tarfile.TarInfo(name=path)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")


def _size(content):
    if isinstance(content, bytes):
        return len(content)
    if isinstance(content, Path):
        return content.stat().st_size
    return content.size


def _file_chunks(path):
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def checkpoint_tar(*, files, mtime):
    """(content length, chunk iterator) of a tar of ``files`` [(path, blob, bytes or a local Path)].

    Each blob is read through the verifying reader: a blob that fails its hash stops the stream
    with an error, so a client sees a truncated download, never corrupted weights. Bytes (a small
    file made for the download, e.g. a manifest) go out as they are."""
    headers = [(_tar_header(path, _size(content), mtime), content) for path, content in files]
    length = sum(len(header) + _size(content) + (-_size(content)) % tarfile.BLOCKSIZE for header, content in headers) + 2 * tarfile.BLOCKSIZE

    def chunks():
        for header, blob in headers:
            yield header
            if isinstance(blob, bytes):
                yield blob
            elif isinstance(blob, Path):
                yield from _file_chunks(blob)
            else:
                with blob_open(blob) as reader:
                    yield from reader
            padding = (-_size(blob)) % tarfile.BLOCKSIZE
            if padding:
                yield b"\0" * padding
        yield b"\0" * (2 * tarfile.BLOCKSIZE)

    return length, chunks()
