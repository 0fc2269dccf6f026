"""Local model directories for judges (and any other local model a request names), owned by the
operator: LETHE_MODEL_DIR is the one directory such models are read from, and a request names a
model by its path relative to it.

``model_dir_path_check`` is lexical: it refuses absolute paths, ``..``, and anything that is not
a plain relative path, without touching the filesystem, so a web request never learns whether a
directory exists outside the model directory. ``resolve_model_dir`` runs where the model is used
(inside the run): it follows links, refuses a result outside the model directory, and needs an
existing directory. ``model_dir_sha256`` pins a directory by content. No Django imports but the
settings read by ``model_root``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

SETTING = "LETHE_MODEL_DIR"


class ModelDirError(ValueError):
    pass


def model_root() -> Path:
    """LETHE_MODEL_DIR as configured (not checked against the filesystem)."""
    from django.conf import settings

    root = settings.LETHE_MODEL_DIR
    if not root:
        raise ModelDirError(f"local models are read from {SETTING}, which the operator has not set")
    return Path(root)


def model_dir_path_check(relative_path) -> str:
    """The normalised relative path (``"classifiers/refusal-v2"``); a ModelDirError for anything
    else. Purely lexical: nothing on disk is read."""
    if not isinstance(relative_path, str) or not relative_path.strip():
        raise ModelDirError(f'give the model as a path relative to {SETTING}, e.g. "classifiers/refusal"; got {relative_path!r}')
    text = relative_path.strip()
    if "\\" in text or "\0" in text or text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise ModelDirError(f"{text!r} must be a path relative to {SETTING} (no absolute paths, drive letters, '~' or backslashes)")
    parts = [part for part in PurePosixPath(text).parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ModelDirError(f"{text!r} must name a directory inside {SETTING}, without '..'")
    return "/".join(parts)


def resolve_model_dir(relative_path) -> Path:
    """The absolute directory ``relative_path`` names inside LETHE_MODEL_DIR, links followed.

    Raises ModelDirError when the path is not a plain relative one, when it (or a link on the way)
    leads outside the model directory, or when no directory is there.
    """
    relative = model_dir_path_check(relative_path)
    root = model_root()
    try:
        root_real = root.resolve(strict=True)
    except OSError:
        raise ModelDirError(f"{SETTING} ({root}) does not exist on this machine") from None
    target = (root_real / relative).resolve()
    if not target.is_relative_to(root_real):
        raise ModelDirError(f"{relative!r} leads outside {SETTING} (through a symbolic link); refused")
    if not target.is_dir():
        raise ModelDirError(f"no model directory {relative!r} in {SETTING} ({root}) on this machine")
    return target


def model_dir_files(directory: Path) -> list[Path]:
    """Every file under ``directory``, sorted; a file whose link leads outside LETHE_MODEL_DIR is
    refused (a Hugging Face cache links snapshots to blobs inside the same root, which is fine)."""
    root_real = model_root().resolve()
    files = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if not path.resolve().is_relative_to(root_real):
            raise ModelDirError(f"{path.relative_to(directory)} in {directory.name} links outside {SETTING}; refused")
        files.append(path)
    return files


def model_dir_sha256(directory: Path) -> str:
    """One sha256 over every file's relative path and bytes: the directory's content pin."""
    digest = hashlib.sha256()
    for file in model_dir_files(directory):
        digest.update(file.relative_to(directory).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
