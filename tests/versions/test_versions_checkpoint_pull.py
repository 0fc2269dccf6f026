"""``manage.py pull_checkpoint`` against a live Lethe server on loopback: files come through the
server from a folder store, and straight from the bucket (moto's server on 127.0.0.1) by
presigned redirect from an object store, each checked against the server's Repr-Digest; bytes
changed in the bucket behind the server's back are refused and not kept."""

import base64
import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import FileResponse

from tests.versions.checkpoint_files import write_full
from versions import services
from versions.checkpoint_pull import PullFailed, _destination, _digest_from_header

pytestmark = pytest.mark.django_db(transaction=True)


def _publish(project, user, tmp_path, monkeypatch):
    """tiny@1 (a full checkpoint) in the current store, and an API token of its admin in LETHE_TOKEN."""
    model = services.model_create(project=project, name="tiny", actor=user)
    folder = write_full(tmp_path / "full")
    services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    _, key = services.token_create(user=user, name="pull")
    monkeypatch.setenv("LETHE_TOKEN", key)
    return folder


@pytest.fixture
def published(project, user, tmp_path, monkeypatch):
    return _publish(project, user, tmp_path, monkeypatch)


@pytest.fixture
def published_in_bucket(s3_bucket, settings, project, user, tmp_path, monkeypatch):
    """The same in a bucket store that answers every file with a presigned redirect."""
    settings.LETHE_ARTIFACT_REDIRECT_BYTES = 1
    return _publish(project, user, tmp_path, monkeypatch)


def _pull(live_server, output, capsys):
    call_command("pull_checkpoint", "tiny@1", "--server", live_server.url, "--project", "safety", "--output", str(output))
    return capsys.readouterr().out.splitlines()


def _listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


def test_files_come_through_the_server_from_a_folder_store_verified(published, live_server, tmp_path, capsys):
    # when the checkpoint is pulled from the server
    lines = _pull(live_server, tmp_path / "out", capsys)

    # then the folder holds exactly the registered files, each verified, all through the server
    assert _listing(tmp_path / "out") == _listing(published)
    expected = [(p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(published.iterdir())]
    assert lines[:-1] == [f"{name}  {size} bytes  sha256 {sha}  verified (from the server)" for name, size, sha in expected]
    assert lines[-1] == f"Pulled tiny@1 into {tmp_path / 'out'}: {len(expected)} files, {sum(size for _, size, _ in expected)} bytes, all verified"


def test_from_an_object_store_files_come_from_the_bucket_and_changed_bytes_are_refused(published_in_bucket, live_server, tmp_path, capsys, s3_bucket, s3_client):
    # when the checkpoint is pulled from the server
    lines = _pull(live_server, tmp_path / "out", capsys)

    # then every file came straight from the bucket, verified
    assert _listing(tmp_path / "out") == _listing(published_in_bucket)
    assert all(line.endswith("verified (from the object store)") for line in lines[:-1]) and len(lines) == len(list(published_in_bucket.iterdir())) + 1

    # when the weights are changed in the bucket behind the server's back (same length) and the
    # checkpoint is pulled again
    weights = (published_in_bucket / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    s3_client.put_object(Bucket=s3_bucket, Key=f"blobs/{sha[:2]}/{sha[2:4]}/{sha}", Body=bytes(255 - b for b in weights))
    with pytest.raises(CommandError) as refused:
        _pull(live_server, tmp_path / "again", capsys)

    # then the pull fails naming the file and both hashes, and keeps neither it nor a partial file
    changed = hashlib.sha256(bytes(255 - b for b in weights)).hexdigest()
    assert str(refused.value) == f"model.safetensors: the bytes received hash to {changed}, not the {sha} the server stated; the file was not kept."
    assert not (tmp_path / "again" / "model.safetensors").exists()
    assert not (tmp_path / "again" / "model.safetensors.partial").exists()


def test_a_pull_without_a_token_says_how_to_get_one(published, live_server, tmp_path, monkeypatch):
    monkeypatch.delenv("LETHE_TOKEN")
    with pytest.raises(CommandError, match=r"^Set LETHE_TOKEN to an API token of the server \(manage.py lethe_token on the server makes one\)\.$"):
        call_command("pull_checkpoint", "tiny@1", "--server", live_server.url, "--project", "safety", "--output", str(tmp_path / "out"))


def test_a_wrong_token_is_the_servers_answer(published, live_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LETHE_TOKEN", "lethe_not-a-token")
    with pytest.raises(CommandError, match=r"^Could not list the checkpoint's files: HTTP 401: "):
        _pull(live_server, tmp_path / "out", capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", ["../outside", "/etc/passwd", "a/../../b", "a\\..\\b", ""])
def test_a_path_outside_the_output_folder_is_refused(path, tmp_path):
    with pytest.raises(PullFailed, match="outside the checkpoint's folder; nothing was written for it"):
        _destination(tmp_path, path)


def test_a_path_inside_the_output_folder_is_kept_as_it_is(tmp_path):
    assert _destination(tmp_path, "tokenizer/vocab.json") == tmp_path / "tokenizer" / "vocab.json"


def test_repr_digest_is_read_as_rfc_9530_writes_it():
    sha = hashlib.sha256(b"x").digest()
    encoded = base64.b64encode(sha).decode()
    assert _digest_from_header(f"sha-256=:{encoded}:") == sha.hex()
    assert _digest_from_header(f"sha-512=:AAAA:, sha-256=:{encoded}:") == sha.hex()
    assert _digest_from_header("sha-256=not-a-byte-sequence") is None
    assert _digest_from_header(None) is None


def test_a_blob_damaged_in_a_folder_store_is_refused_by_the_server_and_not_kept(published, live_server, tmp_path, capsys, _artifact_root):
    # given the weights damaged in the server's folder store (same length, under one chunk: the
    # server holds a blob's last chunk back until the whole blob verified)
    weights = (published / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    (_artifact_root / "blobs" / sha[:2] / sha[2:4] / sha).write_bytes(bytes(255 - b for b in weights))

    # when the checkpoint is pulled
    with pytest.raises(CommandError, match=r"^Could not download model\.safetensors: HTTP 500: "):
        _pull(live_server, tmp_path / "out", capsys)

    # then no byte of it was served or kept; the file before it was
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "model.safetensors.partial").exists()
    assert (tmp_path / "out" / "config.json").read_bytes() == (published / "config.json").read_bytes()


def test_a_large_file_in_a_folder_store_is_handed_to_the_servers_sendfile_and_the_client_checks_it(published, api_client, live_server, tmp_path, capsys, settings, _artifact_root):
    # given a folder store that serves files of any size without reading them
    settings.LETHE_ARTIFACT_REDIRECT_BYTES = 1
    weights = (published / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()

    # when the weights are downloaded through the API
    response = api_client.get("/api/v1/projects/safety/models/tiny/checkpoints/1/files/model.safetensors")

    # then the response is the stored file itself (the WSGI server's file wrapper sends it), with its digest
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    assert (response["Repr-Digest"], response["X-Lethe-Sha256"], response["Content-Length"]) == (
        f"sha-256=:{base64.b64encode(bytes.fromhex(sha)).decode()}:",
        sha,
        str(len(weights)),
    )
    assert b"".join(response.streaming_content) == weights

    # and when the stored file is damaged, the server sends it unread, and the client refuses it
    (_artifact_root / "blobs" / sha[:2] / sha[2:4] / sha).write_bytes(bytes(255 - b for b in weights))
    changed = hashlib.sha256(bytes(255 - b for b in weights)).hexdigest()
    with pytest.raises(CommandError, match=rf"^model\.safetensors: the bytes received hash to {changed}, not the {sha} the server stated; the file was not kept\.$"):
        _pull(live_server, tmp_path / "out", capsys)
    assert not (tmp_path / "out" / "model.safetensors").exists()
