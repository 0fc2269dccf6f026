"""One stored file of a checkpoint, by its path: the download that can leave the server's data
path. A blob of at least LETHE_ARTIFACT_REDIRECT_BYTES is served without the server reading it:
on an object store, a redirect to a presigned URL of the bucket (the client fetches the bytes
from the store); on a folder store, the open file handed to the WSGI server's file wrapper
(gunicorn sends it with sendfile: no copy through Python). Either way the client checks the bytes
against the sha256 in the headers (Repr-Digest, RFC 9530; Lethe's ``pull_checkpoint`` does), each
blob was verified once when it was written, and the scrub (``blobs verify``) re-hashes the store
on a schedule. Smaller files stream through, verified against their sha256 on the way out (a
damaged blob never comes out whole)."""

import base64

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, HttpResponseRedirect, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from core.api.schema import api_schema
from core.api.views import ProjectApiView
from core.errors import NotFound
from versions import object_store, selectors
from versions.blob_store import artifact_storage, blob_open
from versions.models import Role


def digest_headers(blob):
    """The blob's sha256 in RFC 9530's Repr-Digest form and as plain hex."""
    encoded = base64.b64encode(bytes.fromhex(blob.sha256)).decode("ascii")
    return {"Repr-Digest": f"sha-256=:{encoded}:", "X-Lethe-Sha256": blob.sha256}


def blob_download_response(blob, *, filename):
    storage = artifact_storage()
    large = blob.size >= settings.LETHE_ARTIFACT_REDIRECT_BYTES
    if large and object_store.object_storage(storage):
        response = HttpResponseRedirect(object_store.presigned_download_url(storage, blob.storage_name, filename=filename))
    elif large and isinstance(storage, FileSystemStorage):
        response = FileResponse(storage.open(blob.storage_name, "rb"), as_attachment=True, filename=filename, content_type="application/octet-stream")
    else:
        reader = blob_open(blob)
        response = StreamingHttpResponse(_chunks(reader), content_type="application/octet-stream")
        response["Content-Length"] = str(blob.size)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    for header, value in digest_headers(blob).items():
        response[header] = value
    return response


def _chunks(reader):
    with reader:
        yield from reader


class CheckpointFileDownloadApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_file_download",
        tags=["checkpoints"],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file's bytes, verified."),
            (302, "application/octet-stream"): OpenApiResponse(description="Object store, large file: a presigned URL of the bucket."),
        },
        errors=(401, 403, 404, 503),
        description="One stored file of a checkpoint. Repr-Digest (RFC 9530) and X-Lethe-Sha256 carry its sha256. Files of "
        "at least LETHE_ARTIFACT_REDIRECT_BYTES are served without the server reading them (with an object store, a redirect "
        "to a short-lived presigned URL of the bucket; with a folder store, sent by the WSGI server's sendfile): check them "
        "against the digest. Smaller files are verified by the server on the way out.",
    )
    def get(self, request, project_slug, name, number, path):
        checkpoint = selectors.checkpoint_get_by_name(project=self.project, model_name=name, number=number)
        item = selectors.checkpoint_files(checkpoint=checkpoint).filter(path=path).first()
        if item is None:
            raise NotFound(f"{checkpoint} has no file {path!r}.")
        return blob_download_response(item.blob, filename=path.rsplit("/", 1)[-1])
