"""Models and checkpoints: registration (JSON or uploaded files), files, downloads, lineage, tags."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import status
from rest_framework.response import Response

from core.api.parsers import JSONParser
from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from core.errors import Conflict, NotFound, ValidationFailed
from versions import checkpoint_files, portable, selectors, services
from versions.api import archives, uploads
from versions.api import serializers as s
from versions.models import CheckpointKind, Role
from versions.api.views.common import _valid


def _model(view, name):
    return view.project, selectors.model_get(project=view.project, name=name)


def _checkpoint(view, name, number):
    return selectors.checkpoint_get_by_name(project=view.project, model_name=name, number=number)


def _checkpoint_row(model, number):
    """One checkpoint in the API's shape (the same rows as the list)."""
    rows = selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=model).filter(number=number))
    if not rows:
        raise NotFound(f"{model.name} has no checkpoint {number}.")
    return rows[0]


class ModelListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="models_list", tags=["models"], responses=s.ModelSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.models_for_project(project=project), serializer_class=s.ModelSerializer)

    @api_schema(operation_id="models_create", tags=["models"], request=s.ModelCreateSerializer, responses={201: s.ModelSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.ModelCreateSerializer, request.data)
        model = services.model_create(project=project, actor=request.user, **data)
        return Response(s.ModelSerializer(selectors.models_for_project(project=project).get(pk=model.pk)).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="models_retrieve", tags=["models"], responses=s.ModelSerializer)
    def get(self, request, project_slug, name):
        project, model = _model(self, name)
        return Response(s.ModelSerializer(selectors.models_for_project(project=project).get(pk=model.pk)).data)


def _parents(project, model, refs):
    parents = []
    for ref in refs:
        owner = selectors.model_get(project=project, name=ref["model"]) if ref.get("model") else model
        parents.append((selectors.checkpoint_get(model=owner, number=ref["number"]), ref["relation"]))
    return parents


def _register_options(project, model, data):
    return {
        "architecture": data["architecture"],
        "message": data["message"],
        "metadata": data["metadata"],
        "parents": _parents(project, model, data["parents"]),
        "lineage_method": data["lineage_method"],
        "forget_dataset_sha256": data["forget_dataset_sha256"],
        "retain_dataset_sha256": data["retain_dataset_sha256"],
        "tags": data["tags"],
    }


def _uploaded_files(request, scratch):
    """{relative name: local path or ReceivedObject} from a multipart request: one archive,
    parts named by their paths, or ``files`` parts with a parallel ``paths`` list."""
    uploads = request.FILES
    part_names = list(uploads.keys())
    if "archive" in part_names:
        if part_names != ["archive"] or len(uploads.getlist("archive")) != 1:
            raise ValidationFailed("Send either one archive or the checkpoint's files, not both.", fields={"archive": ["Send it alone."]})
        archive = uploads["archive"]
        path = archives.upload_spool(archive, scratch, 0)
        extracted = scratch() / "extracted"
        extracted.mkdir()
        return archives.archive_extract(path=path, filename=archive.name, directory=extracted)
    if "paths" in request.data:
        paths, parts = request.data.getlist("paths"), uploads.getlist("files")
        if part_names != ["files"] or len(paths) != len(parts):
            raise ValidationFailed(f"paths has {len(paths)} entries for {len(parts)} 'files' parts; give one path per file part.", fields={"paths": ["One path per file."]})
        pairs = list(zip(paths, parts, strict=True))
    else:
        pairs = []
        for name, parts in uploads.lists():
            if len(parts) != 1:
                raise ValidationFailed(f"File {name!r} is given twice.", fields={name: ["Given twice."]})
            pairs.append((name, parts[0]))
    if not pairs:
        raise ValidationFailed(
            "No files: send the checkpoint's files as multipart parts named by their relative paths, or one 'archive'; register external weights with JSON (kind 'reference').",
            fields={"files": ["Required."]},
        )
    files = {}
    for index, (name, uploaded) in enumerate(pairs):
        if name in files:
            raise ValidationFailed(f"File {name!r} is given twice.", fields={"paths": ["Given twice."]})
        files[name] = archives.upload_spool(uploaded, scratch, index)
    return files


CHECKPOINT_REGISTER_DESCRIPTION = (
    "Register checkpoint n+1. JSON registers a reference to external weights (kind 'reference', external_ref, "
    "external_revision) or a served model (kind 'endpoint', endpoint {profile, model, parameters}: a profile the operator "
    "defines, never a URL or a key). multipart/form-data uploads stored weights: one 'archive' (.tar, .tar.gz, .tgz, .zip), or the files, "
    "each part named by its relative path (or parts named 'files' with a parallel 'paths' list); 'metadata' and 'parents' "
    "are JSON strings there. Weights only as safetensors; pickles, links, '..' and archive bombs are refused and nothing is stored."
)


class CheckpointListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}
    parser_classes = [JSONParser, uploads.HashingMultiPartParser]

    @api_schema(operation_id="checkpoints_list", tags=["checkpoints"], responses=s.CheckpointSerializer(many=True), parameters=[s.VersionListQuerySerializer])
    def get(self, request, project_slug, name):
        _, model = _model(self, name)
        query = _valid(s.VersionListQuerySerializer, request.query_params)
        tag = query.get("tag")
        return self.paginated(
            selectors.checkpoints_for_model(model=model, tag=tag), rows=selectors.checkpoint_rows_complete, numbered=None if tag else {"total": model.checkpoint_count}
        )

    @api_schema(
        operation_id="checkpoints_register",
        tags=["checkpoints"],
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="CheckpointJsonRegister",
                serializers={"reference": s.CheckpointReferenceSerializer, "endpoint": s.CheckpointEndpointSerializer},
                resource_type_field_name="kind",
            ),
            "multipart/form-data": s.CheckpointUploadSerializer,
        },
        responses={201: s.CheckpointSerializer},
        errors=(*WRITE_ERRORS, 413, 415),
        description=CHECKPOINT_REGISTER_DESCRIPTION,
    )
    def post(self, request, project_slug, name):
        project, model = _model(self, name)
        if request.content_type.startswith("multipart/form-data"):
            data = _valid(s.CheckpointUploadSerializer, request.data)
            # In the spool folder: extracted members are then on the store's filesystem and move in.
            with archives.Scratch() as scratch:
                files = _uploaded_files(request, scratch)
                checkpoint = services.checkpoint_register(
                    model=model,
                    kind=data.get("kind") or checkpoint_files.infer_kind(files),
                    files=files,
                    actor=request.user,
                    **_register_options(project, model, data),
                )
        elif isinstance(request.data, dict) and request.data.get("kind") == CheckpointKind.ENDPOINT:
            data = _valid(s.CheckpointEndpointSerializer, request.data)
            checkpoint = services.checkpoint_register(
                model=model,
                kind=CheckpointKind.ENDPOINT,
                endpoint=dict(data["endpoint"]),
                actor=request.user,
                **_register_options(project, model, data),
            )
        else:
            data = _valid(s.CheckpointReferenceSerializer, request.data)
            checkpoint = services.checkpoint_register(
                model=model,
                kind=CheckpointKind.REFERENCE,
                external_ref=data["external_ref"],
                external_revision=data["external_revision"],
                actor=request.user,
                **_register_options(project, model, data),
            )
        return Response(selectors.checkpoint_row_of(checkpoint), status=status.HTTP_201_CREATED)


class CheckpointDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="checkpoints_retrieve", tags=["checkpoints"], responses=s.CheckpointSerializer)
    def get(self, request, project_slug, name, number):
        _, model = _model(self, name)
        return Response(_checkpoint_row(model, number))


class CheckpointFileListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="checkpoint_files_list", tags=["checkpoints"], responses=s.CheckpointFileSerializer(many=True))
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        return self.paginated(selectors.checkpoint_files(checkpoint=checkpoint), serializer_class=s.CheckpointFileSerializer)


class CheckpointDownloadApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_download",
        tags=["checkpoints"],
        responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY, description="A tar of the checkpoint's files.")},
        errors=(401, 403, 404, 409),
        description="Stream the checkpoint's files as a tar, each blob verified against its sha256 on the way out. "
        "Extract it and load the folder with from_pretrained. An adapter's adapter_config.json names its base portably "
        "(the chain's hub id and revision, else the base as model@number) and lethe-manifest.json lists the base and the "
        "adapters to apply on it in order, this one last.",
    )
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        if checkpoint.kind == CheckpointKind.REFERENCE:
            raise Conflict(f"{checkpoint} is a reference to external weights ({checkpoint.external_ref}); it has no stored files.")
        files = [(item.path, item.blob) for item in selectors.checkpoint_files(checkpoint=checkpoint)]
        files = portable.download_files(checkpoint=checkpoint, files=files)
        length, chunks = archives.checkpoint_tar(files=files, mtime=int(checkpoint.created_at.timestamp()))
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = f'attachment; filename="{checkpoint.model.name}-{checkpoint.number}.tar"'
        response["X-Lethe-Checkpoint-Sha256"] = checkpoint.sha256
        return response


class CheckpointLineageApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_lineage",
        tags=["checkpoints"],
        responses=s.LineageSerializer,
        parameters=[s.LineageQuerySerializer],
        errors=(400, 401, 403, 404),
        description="Ancestors and descendants, nearest first, up to depth= generations each way (default 100; one "
        "recursive query each). ancestors_truncated / descendants_truncated say whether deeper ones exist: ask again "
        "with a larger depth. method= and dataset= filter the descendants.",
    )
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        query = _valid(s.LineageQuerySerializer, request.query_params)
        # Plain rows in the LineageSerializer's shape: at depth thousands, one serializer object
        # per node costs more than the recursive statements themselves.
        ancestors, descendants, ancestors_truncated, descendants_truncated = selectors.lineage_nodes(
            checkpoint=checkpoint, method=query.get("method"), dataset_sha256=query.get("dataset"), depth=query["depth"]
        )
        return Response(
            {
                "model": checkpoint.model.name,
                "number": checkpoint.number,
                "depth": query["depth"],
                "ancestors": ancestors,
                "ancestors_truncated": ancestors_truncated,
                "descendants": descendants,
                "descendants_truncated": descendants_truncated,
            }
        )


class CheckpointTagListApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="checkpoint_tags_add", tags=["tags"], request=s.TagCreateSerializer, responses={201: s.TagSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        data = _valid(s.TagCreateSerializer, request.data)
        tag = services.tag_add(name=data["name"], checkpoint=checkpoint, actor=request.user)
        return Response(s.TagSerializer(tag).data, status=status.HTTP_201_CREATED)


class CheckpointTagDetailApi(ProjectApiView):
    roles = {"DELETE": Role.EDITOR}

    @api_schema(operation_id="checkpoint_tags_remove", tags=["tags"], responses={204: None}, errors=(401, 403, 404))
    def delete(self, request, project_slug, name, number, tag):
        checkpoint = _checkpoint(self, name, number)
        found = checkpoint.tags.filter(name=tag).first()
        if found is None:
            raise NotFound(f"{checkpoint} has no tag {tag!r}.")
        services.tag_remove(tag=found, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
