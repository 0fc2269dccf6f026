"""Checkpoint uploads received once: each file part is written to the spool folder in large
chunks and hashed on a worker thread while it is written.

Django's default handlers write 64 KiB at a time to the system temp folder; the register path
then read the file again to hash it and a third time to copy it into the store. Here the sha256
is taken from the bytes as they come off the request (the server's own computation, never a
client's claim), and the spool folder sits on the store's filesystem, so storing is a rename.
"""

import tempfile
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework.parsers import DataAndFiles

from core.api.parsers import MultiPartParser, multipart_parse
from versions.blob_store import CHUNK, ReceivedFile, spool_directory
from versions.hashing import OverlappedSha256


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

    def received(self):
        return ReceivedFile(path=Path(self.temporary_file_path()), sha256=self.sha256, size=self.size)

    def close(self):
        try:
            return self.file.close()
        except FileNotFoundError:  # moved into the store
            pass


class HashingUploadHandler(FileUploadHandler):
    """Every file part to disk (none kept in memory), hashed as it is written."""

    # The multipart parser reads the body in its handlers' chunk size: Django's 64 KiB made the
    # per-chunk Python work count; 4 MiB and more made each copy of a chunk (the WSGI server's
    # buffers, the parser's) miss the CPU cache.
    chunk_size = CHUNK

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.file = HashedUploadedFile(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)
        self.hasher = OverlappedSha256()

    def receive_data_chunk(self, raw_data, start):
        self.hasher.update(raw_data)
        self.file.write(raw_data)  # while the thread hashes the same chunk

    def file_complete(self, file_size):
        self.file.sha256 = self.hasher.hexdigest()
        self.hasher.close()
        self.file.flush()
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def upload_interrupted(self):
        if hasattr(self, "file"):
            self.hasher.close()
            self.file.close()


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
        except BaseException:  # refused, or a client gone mid-body: stop the hash thread, drop the partial file
            handler.upload_interrupted()
            raise
        return DataAndFiles(data, files)


def received_file(uploaded):
    """The ReceivedFile of an upload this module received, or None for any other upload."""
    if isinstance(uploaded, HashedUploadedFile) and uploaded.sha256 is not None:
        return uploaded.received()
    return None
