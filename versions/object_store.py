"""The blob store in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), through
django-storages' ``S3Storage`` and the boto3 client under it.

What the generic storage API does not give, and a content-addressed store needs:

- a blob lands under its content address only whole and only once its hash is known: its bytes
  stream (multipart for large files) into a temporary key under ``incoming/`` while they are
  hashed, and a server-side copy puts them under ``blobs/..`` after the hash matched. An API
  upload streams there straight off the request (``IncomingUpload``), so no byte of it touches
  the web machine's disk; a failed, interrupted or refused upload aborts its multipart upload
  or deletes its temporary key, and what a killed process leaves (a temporary key, an
  unfinished multipart upload) goes with the orphan sweep after its grace period;
- reads stream from the object's body (django-storages' ``S3File`` would first download the
  whole object into a local temporary file);
- presigned URLs, so a large download leaves the server's data path;
- errors of an unreachable or misconfigured store become one clear ``ObjectStoreUnavailable``
  (HTTP 503) instead of a botocore traceback.
"""

import contextlib
import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from boto3.s3.transfer import TransferConfig

from core.errors import LetheError

# 8 MiB parts, 4 in flight: at most ~40 MiB of a file in memory at once whatever its size.
PART = 8 * 1024 * 1024
TRANSFER = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4, use_threads=True)
TEMPORARY_PREFIX = "incoming/"


class ObjectStoreUnavailable(LetheError):
    status_code = 503
    code = "object_store_unavailable"


def object_storage(storage):
    """The storage when it is an S3-compatible bucket, else None."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages is not installed: no bucket can be configured either
        return None
    return storage if isinstance(storage, S3Storage) else None


def _client(storage):
    return storage.connection.meta.client


def _key(storage, name):
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


@contextlib.contextmanager
def object_store_errors(storage, action):
    """Turn botocore's connection and service errors into ObjectStoreUnavailable (503)."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ObjectStoreUnavailable(
            f"The object store refused to {action} (bucket {storage.bucket_name!r}: {error.get('Code')} {error.get('Message') or ''}".rstrip()
            + "). Check LETHE_S3_BUCKET, the credentials and the bucket policy."
        ) from exc
    except NoCredentialsError as exc:
        raise ObjectStoreUnavailable(
            f"Lethe has no credentials for the object store, so it could not {action}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or give the machine a role)."
        ) from exc
    except BotoCoreError as exc:
        raise ObjectStoreUnavailable(
            f"The object store is unreachable, so Lethe could not {action} ({exc}). Nothing was stored; try again once LETHE_S3_ENDPOINT_URL answers."
        ) from exc


class _HashingReader:
    """A file-like reader that hashes what boto3 reads from it, in order (it has no seek, so
    boto3 reads it sequentially), so the bytes sent are the bytes hashed."""

    def __init__(self, handle):
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size=-1):
        chunk = self._handle.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


def upload_whole(storage, name, handle, *, sha256, size):
    """Stream ``handle`` into a temporary key while hashing it; when the bytes sent hash to
    ``sha256``, copy them server-side to ``name`` (their content address). Returns nothing;
    raises when the bytes changed on the way, leaving nothing under ``name``."""
    client, bucket = _client(storage), storage.bucket_name
    temporary = _key(storage, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}")
    reader = _HashingReader(handle)
    with object_store_errors(storage, "store a blob"):
        try:
            client.upload_fileobj(reader, bucket, temporary, Config=TRANSFER)  # multipart above 8 MiB
            if reader.digest.hexdigest() != sha256 or reader.size != size:
                raise LetheError(f"A file changed while it was being stored (expected sha256 {sha256}, sent {reader.digest.hexdigest()}); nothing was stored under its hash.")
            land(storage, temporary, name, normalized=True)
        finally:
            with contextlib.suppress(BotoCoreError, ClientError):
                client.delete_object(Bucket=bucket, Key=temporary)


def land(storage, temporary, name, *, normalized=False):
    """Copy the whole object at ``temporary`` to ``name`` (its content address) server-side
    (multipart copy above 8 MiB): no byte comes back through this process. The temporary key
    stays; its owner deletes it."""
    client, bucket = _client(storage), storage.bucket_name
    source = temporary if normalized else _key(storage, temporary)
    with object_store_errors(storage, "store a blob"):
        client.copy({"Bucket": bucket, "Key": source}, bucket, _key(storage, name), Config=TRANSFER)


class IncomingUpload:
    """A file streamed into a temporary key of the bucket while it arrives, so that a web
    machine needs no disk for uploads: one PUT when it stays under one part, else an 8 MiB part
    of a multipart upload each time one fills. One part is sent on a worker thread while the
    next fills (the request body keeps moving), so at most two parts are in memory whatever the
    file's size. The caller hashes the bytes it writes.

    The temporary key belongs to whoever made it: ``close()`` aborts an unfinished multipart
    upload or deletes the finished object, whether or not it was copied to its content address
    meanwhile (``land``)."""

    def __init__(self, storage):
        self._storage = storage
        self._client, self._bucket = _client(storage), storage.bucket_name
        self.name = f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        self._key = _key(storage, self.name)
        self._buffer = bytearray()
        self._upload_id = None
        self._executor = None
        self._sending = None  # (part number, future) of the part in flight
        self._parts = []
        self.complete = False
        self.closed = False

    def write(self, data):
        self._buffer += data
        while len(self._buffer) >= PART:  # every part but the last must be at least 5 MiB
            self._send(bytes(self._buffer[:PART]))
            del self._buffer[:PART]

    def _send(self, body):
        with object_store_errors(self._storage, "store an upload"):
            if self._upload_id is None:
                self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
            number = len(self._parts) + (self._sending is not None) + 1
            self._wait()
            future = self._executor.submit(self._client.upload_part, Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body)
            self._sending = (number, future)

    def _wait(self):
        if self._sending is not None:
            (number, future), self._sending = self._sending, None
            self._parts.append({"PartNumber": number, "ETag": future.result()["ETag"]})

    def finish(self):
        """Send what is left and complete the object under the temporary key."""
        with object_store_errors(self._storage, "store an upload"):
            if self._upload_id is None:
                self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:  # the last part may be short
                    self._send(bytes(self._buffer))
                self._wait()
                self._client.complete_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts})
        self._buffer = bytearray()
        self._stop_sending()
        self.complete = True

    def read_head(self, length):
        """The object's first ``length`` bytes (all of it with None), by a ranged GET."""
        return read_head(self._storage, self.name, length)

    def _stop_sending(self):
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def close(self):
        """Leave nothing behind: abort the multipart upload if it did not complete, else delete
        the object. Best effort: the orphan sweep removes what an unreachable bucket kept."""
        if self.closed:
            return
        self.closed = True
        self._buffer = bytearray()
        self._stop_sending()  # no part may arrive after the abort
        with contextlib.suppress(BotoCoreError, ClientError):
            if self.complete:
                self._client.delete_object(Bucket=self._bucket, Key=self._key)
            elif self._upload_id is not None:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


def read_head(storage, name, length=None):
    """The first ``length`` bytes of an object (all of it with None): a ranged GET, so checking
    a file's header reads the header only."""
    if length == 0:
        return b""
    params = {} if length is None else {"Range": f"bytes=0-{length - 1}"}
    with object_store_errors(storage, "read a blob"):
        try:
            response = _client(storage).get_object(Bucket=storage.bucket_name, Key=_key(storage, name), **params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                return b""
            raise
        with contextlib.closing(response["Body"]) as body:
            return body.read()


def open_stream(storage, name):
    """The object's body as a streaming reader (read(size), close())."""
    with object_store_errors(storage, "read a blob"):
        return _Body(_client(storage).get_object(Bucket=storage.bucket_name, Key=_key(storage, name))["Body"])


class _Body:
    """botocore's StreamingBody with the file protocol's read(-1) for "the rest"."""

    def __init__(self, body):
        self._body = body

    def read(self, size=-1):
        return self._body.read(None if size is None or size < 0 else size)

    def close(self):
        self._body.close()


def exists(storage, name):
    with object_store_errors(storage, "look up a blob"):
        return storage.exists(name)


def presigned_download_url(storage, name, *, filename, content_type="application/octet-stream"):
    """A time-limited GET URL for one object (LETHE_S3_PRESIGN_SECONDS), naming the download."""
    with object_store_errors(storage, "sign a download"):
        return _client(storage).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": storage.bucket_name,
                "Key": _key(storage, name),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=storage.querystring_expire,
        )


def list_objects(storage, prefix):
    """(key relative to the storage's location, last-modified datetime, size) under ``prefix``."""
    client, bucket = _client(storage), storage.bucket_name
    base = storage.location or ""
    base = base + "/" if base and not base.endswith("/") else base
    with object_store_errors(storage, "list blobs"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(base) :], item["LastModified"], item["Size"]


def move(storage, name, target):
    """Move an object to another key by server-side copy, then delete the original."""
    client, bucket = _client(storage), storage.bucket_name
    with object_store_errors(storage, "move a blob"):
        client.copy({"Bucket": bucket, "Key": _key(storage, name)}, bucket, _key(storage, target), Config=TRANSFER)
        client.delete_object(Bucket=bucket, Key=_key(storage, name))


def delete(storage, name):
    with object_store_errors(storage, "delete a blob"):
        _client(storage).delete_object(Bucket=storage.bucket_name, Key=_key(storage, name))


def abort_stale_uploads(storage, cutoff):
    """Abort unfinished multipart uploads into the temporary prefix begun before ``cutoff`` (a
    datetime): what an upload killed mid-way leaves behind, invisible but billed."""
    client, bucket = _client(storage), storage.bucket_name
    with object_store_errors(storage, "list unfinished uploads"):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=_key(storage, TEMPORARY_PREFIX)):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= cutoff:
                    client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def bucket_reachable(storage):
    """None when the bucket answers, else a sentence saying why not (for ``check --deploy``)."""
    if not storage.bucket_name:
        return "LETHE_S3_BUCKET is not set."
    try:
        with object_store_errors(storage, "reach the bucket"):
            _client(storage).head_bucket(Bucket=storage.bucket_name)
    except ObjectStoreUnavailable as exc:
        return str(exc)
    return None
