"""Datasets and their versions: rows as JSON or an uploaded JSONL/CSV file, rows read back (a hazard read when unredacted)."""

from django.conf import settings
from rest_framework import status
from rest_framework.response import Response

from core.api.parsers import JSONParser, MultiPartParser
from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from core.errors import TooLarge, ValidationFailed
from versions import selectors, services
from versions.api import serializers as s
from versions.models import Role
from versions.api.views.common import _valid


def _dataset(view, name):
    return selectors.dataset_get(project=view.project, name=name)


class DatasetListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="datasets_list", tags=["datasets"], responses=s.DatasetSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.datasets_for_project(project=project), serializer_class=s.DatasetSerializer)

    @api_schema(operation_id="datasets_create", tags=["datasets"], request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.DatasetCreateSerializer, request.data)
        dataset = services.dataset_create(project=project, actor=request.user, **data)
        return Response(s.DatasetSerializer(selectors.dataset_get(project=project, name=dataset.name)).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="datasets_retrieve", tags=["datasets"], responses=s.DatasetSerializer)
    def get(self, request, project_slug, name):
        return Response(s.DatasetSerializer(_dataset(self, name)).data)


class DatasetVersionListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}
    parser_classes = [JSONParser, MultiPartParser]

    @api_schema(operation_id="dataset_versions_list", tags=["datasets"], responses=s.DatasetVersionSerializer(many=True))
    def get(self, request, project_slug, name):
        dataset = _dataset(self, name)
        return self.paginated(selectors.dataset_versions(dataset=dataset), serializer_class=s.DatasetVersionSerializer)

    @api_schema(
        operation_id="dataset_versions_create",
        tags=["datasets"],
        request={"application/json": s.DatasetVersionCreateSerializer, "multipart/form-data": s.DatasetVersionCreateSerializer},
        responses={201: s.DatasetVersionSerializer},
        errors=(*WRITE_ERRORS, 413, 415),
        description="A new immutable, hashed version: JSON rows, or a JSONL/CSV file of prompt/response rows (multipart 'file'). Errors name the line; nothing is half-imported.",
    )
    def post(self, request, project_slug, name):
        dataset = _dataset(self, name)
        data = _valid(s.DatasetVersionCreateSerializer, request.data)
        if "rows" in data:
            version = services.dataset_version_create(dataset=dataset, rows=data["rows"], actor=request.user, message=data["message"])
        else:
            upload = data["file"]
            # The file is parsed in memory, so it is held to the in-memory request body limit.
            if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                raise TooLarge(
                    f"{upload.name}: {upload.size} bytes is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes for a dataset file (LETHE_MAX_REQUEST_BODY_BYTES)."
                )
            fmt = data.get("format") or _table_format(upload.name)
            version = services.dataset_version_import(
                dataset=dataset, data=upload.read(), fmt=fmt, actor=request.user, message=data["message"], max_line_bytes=settings.LETHE_MAX_IMPORT_LINE_BYTES
            )
        return Response(s.DatasetVersionSerializer(selectors.dataset_version_get(dataset=dataset, number=version.number)).data, status=status.HTTP_201_CREATED)


def _table_format(filename):
    lowered = (filename or "").lower()
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    raise ValidationFailed(f"Cannot tell the format of {filename!r}: name it .jsonl or .csv, or give format=jsonl|csv.", fields={"format": ["Required for this file name."]})


class DatasetVersionDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="dataset_versions_retrieve", tags=["datasets"], responses=s.DatasetVersionSerializer)
    def get(self, request, project_slug, name, number):
        dataset = _dataset(self, name)
        return Response(s.DatasetVersionSerializer(selectors.dataset_version_get(dataset=dataset, number=number)).data)


class DatasetVersionRowListApi(ProjectApiView):
    roles = {"GET": Role.REVIEWER}

    @api_schema(
        operation_id="dataset_versions_rows",
        tags=["datasets"],
        responses=s.DatasetRowSerializer(many=True),
        description="The rows. Forget sets hold harmful completions: reviewers and admins only, and every read is audited.",
    )
    def get(self, request, project_slug, name, number):
        dataset = _dataset(self, name)
        version = selectors.dataset_version_get(dataset=dataset, number=number)
        services.hazard_read_record(
            project=dataset.project, actor=request.user, object_type="dataset_version", object_id=version.pk, data={"dataset": dataset.name, "version": version.number}
        )
        return self.paginated(selectors.dataset_version_rows(dataset_version=version), serializer_class=s.DatasetRowSerializer)
