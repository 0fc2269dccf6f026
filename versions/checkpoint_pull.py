"""Lethe's own client for a checkpoint's files: download them from a Lethe server into a folder,
each checked against the sha256 the server states, for loading with from_pretrained.

The server streams small files itself (verified on its way out) but answers a large file in an
object store with a redirect to a presigned URL of the bucket, so the bytes never pass through
it and nothing on the server checks them: the client must. Each file is hashed while it is
written to ``<name>.partial`` and renamed into place only when its hash matches the server's
``Repr-Digest`` (RFC 9530) and the file list's sha256; a mismatch leaves no file.

A server is trusted for what it serves, never for where it writes: a file path that would leave
the output folder is refused. The bucket's URL is fetched without the Lethe token (a presigned
URL carries its own authorization, and the token must not reach another host).
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urljoin

import requests

from core.errors import LetheError

CHUNK = 1024 * 1024
TIMEOUT = (10, 300)  # connect, read: a large file from a slow bucket may pause between chunks


class PullFailed(LetheError):
    pass


@dataclass(frozen=True)
class PulledFile:
    path: str
    size: int
    sha256: str
    redirected: bool  # fetched from the object store's presigned URL, not through the server


def _digest_from_header(value):
    """The sha-256 of an RFC 9530 Repr-Digest header (``sha-256=:<base64>:``) as hex, or None."""
    for member in (value or "").split(","):
        algorithm, _, encoded = member.strip().partition("=")
        if algorithm.strip().lower() == "sha-256" and encoded.startswith(":") and encoded.endswith(":"):
            try:
                return base64.b64decode(encoded[1:-1], validate=True).hex()
            except ValueError:
                return None
    return None


def _destination(output, path):
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in path:
        raise PullFailed(f"The server listed a file path {path!r} outside the checkpoint's folder; nothing was written for it.")
    return Path(output).joinpath(*relative.parts)


def _error(response, what):
    try:
        message = response.json().get("message") or response.text[:300]
    except ValueError:
        message = response.text[:300]
    return PullFailed(f"{what}: HTTP {response.status_code}: {message}")


def _file_list(session, url, headers):
    files = []
    while url:
        response = session.get(url, headers=headers, timeout=TIMEOUT)
        if response.status_code != 200:
            raise _error(response, "Could not list the checkpoint's files")
        page = response.json()
        files.extend(page["results"])
        url = page.get("next")
    return files


def _save(response, destination, *, expected, path):
    """Stream ``response`` to ``destination`` through a .partial file, hashed while written."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as out:
            for chunk in response.iter_content(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise PullFailed(f"{path}: the bytes received hash to {digest.hexdigest()}, not the {expected} the server stated; the file was not kept.")
        os.replace(partial, destination)
    finally:
        response.close()
        partial.unlink(missing_ok=True)
    return size


def checkpoint_pull(*, server, token, project, model, number, output, session=None) -> list[PulledFile]:
    """Download every file of ``model@number`` of ``project`` from the Lethe at ``server`` into
    ``output``, verified; returns what was written. Raises PullFailed naming the first problem."""
    try:
        return _pull(server=server, token=token, project=project, model=model, number=number, output=output, session=session or requests.Session())
    except requests.RequestException as exc:
        # A refused connection, or a body cut short (the server stops a damaged blob mid-stream).
        raise PullFailed(f"The transfer from {server} failed: {exc}. Files already verified were kept; nothing partial was.") from exc


def _pull(*, server, token, project, model, number, output, session):
    headers = {"Authorization": f"Bearer {token}"}
    base = urljoin(server.rstrip("/") + "/", f"api/v1/projects/{quote(project, safe='')}/models/{quote(model, safe='')}/checkpoints/{int(number)}/files/")
    pulled = []
    for item in _file_list(session, base, headers):
        destination = _destination(output, item["path"])
        response = session.get(base + quote(item["path"]), headers=headers, timeout=TIMEOUT, allow_redirects=False, stream=True)
        stated = _digest_from_header(response.headers.get("Repr-Digest"))
        redirected = response.status_code in (301, 302, 303, 307, 308)
        if redirected:
            response.close()
            response = session.get(response.headers["Location"], timeout=TIMEOUT, stream=True)  # no Lethe token to the bucket
        if response.status_code != 200:
            raise _error(response, f"Could not download {item['path']}")
        if stated is None or stated != item["sha256"]:
            response.close()
            raise PullFailed(f"{item['path']}: the server's Repr-Digest ({stated}) does not match the file list's sha256 ({item['sha256']}); nothing was written for it.")
        size = _save(response, destination, expected=stated, path=item["path"])
        pulled.append(PulledFile(path=item["path"], size=size, sha256=stated, redirected=redirected))
    return pulled
