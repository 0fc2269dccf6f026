"""What a checkpoint says about its base once it leaves the server.

peft writes the folder the base was loaded from into ``adapter_config.json``
(``base_model_name_or_path``); for an unlearned adapter that is the server's materialization
cache, useless elsewhere and a leak of the server's layout. Here the base is named portably: the
chain root's hub id and revision when the chain starts from a hub reference, else the root as the
API names it (``model@number``). A download of an adapter also carries ``lethe-manifest.json``:
the base and the adapters to apply on it, in order (the downloaded one last).
"""

import json
import os
import re

from versions.models import CheckpointKind

MANIFEST_NAME = "lethe-manifest.json"
MANIFEST_FORMAT = "lethe-checkpoint-manifest/1"
ADAPTER_CONFIG = "adapter_config.json"

# A hub id: "name" or "owner/name", letters, digits, "-", "_", "." (not leading), no "..".
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def is_hub_id(ref: str) -> bool:
    """True for a hub id, False for a local path (absolute, relative with ./, ~, or existing here)."""
    return bool(_HUB_ID.fullmatch(ref or "")) and ".." not in ref and not os.path.exists(ref)


def base_reference(root) -> dict:
    """The chain root as a download names it: never a server path."""
    reference = {"checkpoint": str(root), "kind": root.kind, "sha256": root.sha256}
    if root.kind == CheckpointKind.REFERENCE and is_hub_id(root.external_ref):
        reference["hub_id"] = root.external_ref
        reference["revision"] = root.external_revision or None
    return reference


def adapter_base_name(reference: dict) -> tuple[str, str | None]:
    """(base_model_name_or_path, revision) for adapter_config.json."""
    if "hub_id" in reference:
        return reference["hub_id"], reference["revision"]
    return reference["checkpoint"], None


def portable_adapter_config(raw: bytes, reference: dict) -> bytes | None:
    """``adapter_config.json`` with its base named portably; None when it already is (or is not JSON)."""
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    name, revision = adapter_base_name(reference)
    if config.get("base_model_name_or_path") == name and config.get("revision") == revision:
        return None
    config["base_model_name_or_path"] = name
    config["revision"] = revision
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def checkpoint_manifest(*, checkpoint, chain) -> dict:
    """The manifest of an adapter download: its base and the adapters to apply, root first."""
    return {
        "format": MANIFEST_FORMAT,
        "checkpoint": str(checkpoint),
        "kind": checkpoint.kind,
        "architecture": checkpoint.architecture,
        "sha256": checkpoint.sha256,
        "base": base_reference(chain[0]),
        # Apply in this order, each merged into the model before the next; the last is this download.
        "adapters": [{"checkpoint": str(item), "sha256": item.sha256} for item in chain[1:]],
    }


def download_files(*, checkpoint, files):
    """The files a download of ``checkpoint`` holds: [(path, blob or bytes)], sorted by path.

    For an adapter, ``adapter_config.json`` names the base portably (rewritten only where the
    stored file names something else, as checkpoints unlearned before this did) and
    ``lethe-manifest.json`` is added. Other kinds go out as stored."""
    from versions.blob_store import blob_read_bytes
    from versions.selectors import checkpoint_adapter_chain

    if checkpoint.kind != CheckpointKind.ADAPTER:
        return files
    chain = checkpoint_adapter_chain(checkpoint=checkpoint)
    reference = base_reference(chain[0])
    out = []
    for path, blob in files:
        if path == ADAPTER_CONFIG:
            rewritten = portable_adapter_config(blob_read_bytes(blob), reference)
            out.append((path, rewritten if rewritten is not None else blob))
        elif path != MANIFEST_NAME:
            out.append((path, blob))
    manifest = checkpoint_manifest(checkpoint=checkpoint, chain=chain)
    out.append((MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()))
    return sorted(out, key=lambda item: item[0])
