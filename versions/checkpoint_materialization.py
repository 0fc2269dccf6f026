"""Laying stored checkpoints out on local disk, ready for from_pretrained."""

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from versions.blob_store import blob_copy_to
from core.errors import ValidationFailed
from versions.models import CheckpointKind


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


def _is_complete(directory: Path, sha256: str) -> bool:
    marker = directory / ".lethe-complete"
    return marker.is_file() and marker.read_text() == sha256


def checkpoint_folder_publish(*, staging: Path, directory: Path, sha256: str) -> Path:
    """Move a fully written ``staging`` folder to ``directory`` in one rename. Another process
    (a second worker materializing the same checkpoint) may have published it first: its folder
    holds the same content (the name is the checkpoint's hash), so it is kept and ours dropped. A
    folder left incomplete (a writer killed before this rename existed) is replaced."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        try:
            os.replace(staging, directory)
            return directory
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if _is_complete(directory, sha256):
            shutil.rmtree(staging, ignore_errors=True)
            return directory
        shutil.rmtree(directory, ignore_errors=True)
    raise OSError(errno.ENOTEMPTY, f"could not publish {directory}: it kept being replaced by incomplete content")


def checkpoint_write_files(*, checkpoint, directory):
    """Write a stored checkpoint's files (verified) into ``directory``; reused when complete.
    Safe when several processes materialize the same checkpoint at once: each writes a staging
    folder of its own and publishes it with ``checkpoint_folder_publish``."""
    directory = Path(directory)
    if _is_complete(directory, checkpoint.sha256):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory.parent))
    try:
        for item in checkpoint.files.select_related("blob"):
            blob_copy_to(item.blob, staging / item.path)
        (staging / ".lethe-complete").write_text(checkpoint.sha256)
        checkpoint_folder_publish(staging=staging, directory=directory, sha256=checkpoint.sha256)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
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
        raise ValidationFailed(
            f"{checkpoint} is an endpoint (a model served behind profile {checkpoint.endpoint.get('profile')!r}); it has no weights to load: evaluate it through its endpoint."
        )
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
