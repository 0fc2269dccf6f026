"""Checkpoint uploads received once: each file part is hashed while it is received, and with a
filesystem store written to the spool folder in large chunks, with a bucket streamed into it.

Django's default handlers write 64 KiB at a time to the system temp folder; the register path
then read the file again to hash it and a third time to copy it into the store. Here the sha256
is taken from the bytes as they come off the request (the server's own computation, never a
client's claim). With a filesystem store the spool folder sits on the store's filesystem, so
storing is a rename. With a bucket, each file part streams into a temporary ``incoming/`` key
(8 MiB multipart parts, at most two in memory) and storing is a server-side copy, so a web
machine needs no disk for uploads and shares nothing with the workers but the bucket. An
archive part is still spooled to local disk: extracting it needs a local file (a zip's index is
at its end).
"""

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework.parsers import DataAndFiles

from core.api.parsers import MultiPartParser, multipart_parse
from core.errors import TooLarge
from versions import object_store
from versions.blob_store import CHUNK, ReceivedFile, ReceivedObject, artifact_storage, spool_directory
from versions.hashing import OverlappedSha256

# The part that carries a whole checkpoint as one archive (the checkpoint upload's form).
ARCHIVE_FIELD = "archive"


class HashedUploadedFile(UploadedFile):
    """An uploaded file in the spool folder and the sha256 of its bytes (set when complete).

    Deleted when closed (Django closes a request's files when the response is done), unless
    it was moved into the store before."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        file = tempfile.NamedTemporaryFile(suffix=".upload", dir=spool_directory())
        super().__init__(file, name, content_type, size, charset, content_type_extra)
        self.sha256 = None

    def temporary_file_path(self):
        return self.file.name

    def complete(self):
        self.file.flush()
        self.file.seek(0)

    def received(self):
        return ReceivedFile(path=Path(self.temporary_file_path()), sha256=self.sha256, size=self.size)

    def close(self):
        try:
            return self.file.close()
        except FileNotFoundError:  # moved into the store
            pass


class StreamedUploadedFile(UploadedFile):
    """An uploaded file streamed into a temporary key of the bucket, and the sha256 of its bytes
    (set when complete). Closing it (Django closes a request's files when the response is done)
    deletes the temporary key, or aborts its multipart upload when it never completed; a copy
    under its content address, if it was stored, stays."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        super().__init__(object_store.IncomingUpload(artifact_storage()), name, content_type, size, charset, content_type_extra)
        self.sha256 = None

    def complete(self):
        self.file.finish()

    def received(self):
        return ReceivedObject(name=self.file.name, sha256=self.sha256, size=self.size)

    def close(self):
        self.file.close()


class HashingUploadHandler(FileUploadHandler):
    """Every file part to disk or into the bucket (none kept in memory whole), hashed as it is
    written."""

    # The multipart parser reads the body in its handlers' chunk size: Django's 64 KiB made the
    # per-chunk Python work count; 4 MiB and more made each copy of a chunk (the WSGI server's
    # buffers, the parser's) miss the CPU cache.
    chunk_size = CHUNK

    def __init__(self, request=None):
        super().__init__(request)
        self.opened = []  # every file of this request, closed all at once if the parse fails

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        bucket = object_store.object_storage(artifact_storage()) is not None
        kind = StreamedUploadedFile if bucket and self.field_name != ARCHIVE_FIELD else HashedUploadedFile
        self.file = kind(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)
        self.opened.append(self.file)
        self.hasher = OverlappedSha256()

    def receive_data_chunk(self, raw_data, start):
        # Refused as soon as it passes the limit: a 100 GiB body must not fill the spool folder or
        # the bucket before the size check after it (the parser's caller drops what was written).
        received = start + len(raw_data)
        if received > settings.LETHE_MAX_UPLOAD_FILE_BYTES:
            raise TooLarge(
                f"{self.file_name}: over the limit of {settings.LETHE_MAX_UPLOAD_FILE_BYTES} bytes (LETHE_MAX_UPLOAD_FILE_BYTES); "
                f"the upload was stopped after {received} bytes and nothing of it was kept."
            )
        self.hasher.update(raw_data)
        self.file.write(raw_data)  # while the thread hashes the same chunk

    def file_complete(self, file_size):
        self.file.sha256 = self.hasher.hexdigest()
        self.hasher.close()
        self.file.complete()
        self.file.size = file_size
        return self.file

    def upload_interrupted(self):
        if hasattr(self, "file"):
            self.hasher.close()
            self.file.close()

    def discard(self):
        """Close every file of the request: a refused or broken body keeps none (in a bucket a
        complete temporary key would otherwise stay until the orphan sweep)."""
        self.upload_interrupted()
        for file in self.opened:
            file.close()


class HashingMultiPartParser(MultiPartParser):
    """DRF's multipart parser with HashingUploadHandler as the only handler, whatever the
    settings say and whenever the body is first read (an authentication check may read it
    before the view runs)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handler = HashingUploadHandler(request)
        try:
            data, files = multipart_parse(meta=meta, stream=stream, upload_handlers=[handler])
        except BaseException:  # refused, a client gone mid-body, a bucket gone: stop the hash thread, drop the files
            handler.discard()
            raise
        return DataAndFiles(data, files)


def received_file(uploaded):
    """The ReceivedFile (or, in a bucket, ReceivedObject) of an upload this module received, or
    None for any other upload."""
    if isinstance(uploaded, HashedUploadedFile | StreamedUploadedFile) and uploaded.sha256 is not None:
        return uploaded.received()
    return None
