"""Validation of checkpoint files before they are stored.

Weights are accepted only as safetensors: pickles are refused whatever their name, because
unpickling runs code. Names must be safe relative paths, and a safetensors header must agree
with the bytes it describes, as the safetensors library checks it.

A file is a local path, or an upload still under its temporary key in the bucket
(``ReceivedObject``): of that, only what a check needs is read back (the first bytes, a
safetensors header, a JSON file), by ranged GETs into memory, never onto local disk.
"""

import contextlib
import json
import os
import re
import struct
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from safetensors import SafetensorError, safe_open

from versions.blob_store import ReceivedFile, ReceivedObject
from core.errors import TooLarge, UnsafeInput, ValidationFailed
from versions.models import CheckpointKind
from core.safe_json import json_loads


PICKLE_EXTENSIONS = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack"}
CODE_EXTENSIONS = {".py", ".pyc", ".so", ".sh", ".exe", ".dll"}
ALLOWED_EXTENSIONS = {".json", ".safetensors", ".txt", ".model", ".md", ".jinja", ".tiktoken", ".vocab", ".merges"}
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


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


def _size(path):
    return path.size if isinstance(path, ReceivedObject) else os.path.getsize(path)


def _read(path, length=None):
    """The first ``length`` bytes of a file (all of it with None)."""
    if isinstance(path, ReceivedObject):
        return path.read_head(length)
    with open(path, "rb") as handle:
        return handle.read(-1 if length is None else length)


@contextlib.contextmanager
def _local_path(path, header_length):
    """A local path safe_open can open: the file itself, or for an upload in the bucket a file
    of the same size holding only its header, the rest a hole never written (safe_open checks
    the header against the file's length and reads no tensor). In memory (memfd) where the
    system has it, so no byte of the upload touches the disk; else a sparse temporary file."""
    if not isinstance(path, ReceivedObject):
        yield os.fspath(path)
        return
    head = path.read_head(8 + header_length)
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("lethe-safetensors-header")
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                out.write(head)
                out.truncate(path.size)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as out:
        out.write(head)
        out.truncate(path.size)
        out.flush()
        yield out.name


def _refuse_pickles(name, path):
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_EXTENSIONS:
        raise UnsafeInput(
            f"{name}: pickled weights ({suffix}) are refused because loading them runs arbitrary code; convert them to safetensors (save_pretrained(..., safe_serialization=True))."
        )
    if suffix in CODE_EXTENSIONS:
        raise UnsafeInput(f"{name}: code files are refused; Lethe never runs code shipped with a checkpoint.")
    head = _read(path, 4)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise UnsafeInput(f"{name}: the content is a Python pickle; pickled weights are refused whatever the file is called.")
    if head == b"PK\x03\x04":
        raise UnsafeInput(f"{name}: the content is a zip archive (PyTorch's pickle format); only safetensors weights are accepted.")
    if suffix not in ALLOWED_EXTENSIONS:
        raise UnsafeInput(f"{name}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(sorted(ALLOWED_EXTENSIONS))}.")


def safetensors_validate(name, path):
    """Refuse a safetensors file whose header does not agree with its bytes.

    The safetensors library itself checks the header (every dtype it can read, shapes, offsets
    tiling the data section exactly, nothing trailing), so a checkpoint it can load is accepted
    here. Lethe's own limit comes first: the header length must fit the file and
    MAX_SAFETENSORS_HEADER, before anything is parsed."""
    size = _size(path)
    raw_length = _read(path, 8)
    if len(raw_length) < 8:
        raise UnsafeInput(f"{name}: not a safetensors file (shorter than its 8-byte header length).")
    (header_length,) = struct.unpack("<Q", raw_length)
    if header_length > MAX_SAFETENSORS_HEADER or header_length > size - 8:
        raise UnsafeInput(f"{name}: corrupted safetensors file (header length {header_length} exceeds the file).")
    try:
        # Opening parses and checks the header only; no tensor is read.
        with _local_path(path, header_length) as local, safe_open(local, framework="numpy"):
            pass
    except SafetensorError as exc:
        raise UnsafeInput(f"{name}: not a valid safetensors file ({exc}).") from None


def _read_json(name, path):
    try:
        return json_loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{name}: not valid JSON ({exc}).") from exc


def infer_kind(names):
    names = set(names)
    if "adapter_config.json" in names:
        return CheckpointKind.ADAPTER
    if "config.json" in names:
        return CheckpointKind.FULL
    raise ValidationFailed(
        "Unknown checkpoint layout: expected a peft adapter (adapter_config.json + adapter_model.safetensors) or a full model (config.json + *.safetensors + tokenizer files)."
    )


def checkpoint_files_validate(*, kind, files):
    """Validate a {relative name: local path or ReceivedObject} mapping for a checkpoint of ``kind``.

    Returns the cleaned mapping. Raises (and so stores nothing) on the first problem."""
    if not files:
        raise ValidationFailed("A stored checkpoint needs files; register external weights as kind 'reference'.")
    cleaned = {}
    for raw_name, path in files.items():
        name = clean_relative_path(raw_name)
        if name in cleaned:
            raise ValidationFailed(f"File {name!r} is given twice.")
        if _size(path) > settings.LETHE_MAX_UPLOAD_FILE_BYTES:
            raise TooLarge(f"{name}: larger than the limit of {settings.LETHE_MAX_UPLOAD_FILE_BYTES} bytes (LETHE_MAX_UPLOAD_FILE_BYTES).")
        _refuse_pickles(name, path)
        cleaned[name] = path if isinstance(path, ReceivedFile | ReceivedObject) else Path(path)
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
