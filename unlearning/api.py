"""REST endpoints for unlearning runs: thin views over services and selectors."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from jobs.services import run_cancel
from unlearning.selectors import unlearning_run_get, unlearning_runs_for_project
from unlearning.serializers import UnlearningRunCreateSerializer, UnlearningRunDetailSerializer, UnlearningRunSerializer
from unlearning.services import checkpoint_merged_directory, unlearning_run_create
from versions.api import archives
from versions.models import Role
from versions.selectors import checkpoint_get_by_name, checkpoint_resolve, dataset_version_resolve

TAGS = ["unlearning"]


class UnlearningRunListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="unlearning_runs_list", tags=TAGS, responses=UnlearningRunSerializer(many=True))
    def get(self, request, project_slug):
        return self.paginated(unlearning_runs_for_project(project=self.project), serializer_class=UnlearningRunSerializer)

    @api_schema(
        operation_id="unlearning_runs_create",
        tags=TAGS,
        request=UnlearningRunCreateSerializer,
        responses={201: UnlearningRunDetailSerializer},
        errors=WRITE_ERRORS,
    )
    def post(self, request, project_slug):
        project = self.project
        serializer = UnlearningRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        unlearning_run = unlearning_run_create(
            parent_checkpoint=checkpoint_resolve(project=project, ref=data["parent_checkpoint"]),
            method=data["method"],
            hyperparameters=data["hyperparameters"],
            forget_dataset_version=dataset_version_resolve(project=project, ref=data["forget_dataset_version"]),
            retain_dataset_version=dataset_version_resolve(project=project, ref=data["retain_dataset_version"]),
            seed=data["seed"],
            branch_label=data["branch_label"],
            actor=request.user,
        )
        unlearning_run = unlearning_run_get(project=project, unlearning_run_id=unlearning_run.pk)
        return Response(UnlearningRunDetailSerializer(unlearning_run).data, status=status.HTTP_201_CREATED)


class UnlearningRunDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="unlearning_runs_retrieve", tags=TAGS, responses=UnlearningRunDetailSerializer)
    def get(self, request, project_slug, unlearning_run_id):
        project = self.project
        return Response(UnlearningRunDetailSerializer(unlearning_run_get(project=project, unlearning_run_id=unlearning_run_id)).data)


class UnlearningRunCancelApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="unlearning_runs_cancel", tags=TAGS, request=None, responses=UnlearningRunDetailSerializer, errors=WRITE_ERRORS)
    def post(self, request, project_slug, unlearning_run_id):
        project = self.project
        unlearning_run = unlearning_run_get(project=project, unlearning_run_id=unlearning_run_id)
        run_cancel(run=unlearning_run.run, actor=request.user)
        return Response(UnlearningRunDetailSerializer(unlearning_run_get(project=project, unlearning_run_id=unlearning_run_id)).data)


class CheckpointMergedDownloadApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_download_merged",
        tags=["checkpoints"],
        responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY, description="A tar of one full model.")},
        errors=(401, 403, 404, 409),
        description="An adapter checkpoint as one full model: its base with every adapter of its chain merged in order, "
        "safetensors and the base's tokenizer (or processor), streamed as a tar. Load the folder with "
        "AutoModelForCausalLM.from_pretrained. Merged on the server's CPU on first request, then cached. 409 for a "
        "checkpoint that is not an adapter (download it as it is).",
    )
    def get(self, request, project_slug, name, number):
        project = self.project
        checkpoint = checkpoint_get_by_name(project=project, model_name=name, number=number)
        directory = checkpoint_merged_directory(checkpoint=checkpoint)
        files = [(path.name, path) for path in sorted(directory.iterdir()) if path.is_file() and not path.name.startswith(".lethe-")]
        length, chunks = archives.checkpoint_tar(files=files, mtime=int(checkpoint.created_at.timestamp()))
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = f'attachment; filename="{checkpoint.model.name}-{checkpoint.number}-merged.tar"'
        response["X-Lethe-Checkpoint-Sha256"] = checkpoint.sha256
        return response
