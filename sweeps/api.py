"""REST endpoints for sweeps: thin views over services and selectors."""

from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from evals.selectors import suite_version_resolve
from sweeps.selectors import sweep_comparison, sweep_get, sweeps_for_project
from sweeps.serializers import SweepCreateSerializer, SweepDetailSerializer, SweepSeedsAddSerializer, SweepSerializer
from sweeps.services import sweep_cancel, sweep_create, sweep_resume, sweep_seeds_add
from versions.models import Role
from versions.selectors import checkpoint_resolve, dataset_version_resolve

TAGS = ["sweeps"]


def sweep_detail_data(*, project, sweep_id) -> dict:
    sweep = sweep_get(project=project, sweep_id=sweep_id)
    sweep.comparison = sweep_comparison(sweep=sweep)
    return SweepDetailSerializer(sweep).data


class SweepListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="sweeps_list", tags=TAGS, responses=SweepSerializer(many=True))
    def get(self, request, project_slug):
        return self.paginated(sweeps_for_project(project=self.project), serializer_class=SweepSerializer)

    @api_schema(operation_id="sweeps_create", tags=TAGS, request=SweepCreateSerializer, responses={201: SweepDetailSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        serializer = SweepCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sweep = sweep_create(
            parent_checkpoint=checkpoint_resolve(project=project, ref=data["parent_checkpoint"]),
            forget_dataset_version=dataset_version_resolve(project=project, ref=data["forget_dataset_version"]),
            retain_dataset_version=dataset_version_resolve(project=project, ref=data["retain_dataset_version"]),
            utility_dataset_version=dataset_version_resolve(project=project, ref=data["utility_dataset_version"]),
            configurations=[dict(entry) for entry in data["configurations"]],
            suite_versions=[suite_version_resolve(project=project, ref=ref) for ref in data["suite_versions"]],
            judge=data["judge"],
            judge_config=data["judge_config"],
            generation=data["generation"],
            statistics=data["statistics"],
            evaluation_seed=data["evaluation_seed"],
            name=data["name"],
            actor=request.user,
            strategy=data["strategy"],
            trials=data["trials"],
            strategy_seed=data["strategy_seed"],
            parallelism=data["parallelism"],
            budget_steps=data["budget_steps"],
            budget_seconds=data["budget_seconds"],
        )
        return Response(sweep_detail_data(project=project, sweep_id=sweep.pk), status=status.HTTP_201_CREATED)


class SweepDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="sweeps_retrieve", tags=TAGS, responses=SweepDetailSerializer)
    def get(self, request, project_slug, sweep_id):
        return Response(sweep_detail_data(project=self.project, sweep_id=sweep_id))


class SweepCancelApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="sweeps_cancel", tags=TAGS, request=None, responses=SweepDetailSerializer, errors=WRITE_ERRORS)
    def post(self, request, project_slug, sweep_id):
        sweep_cancel(sweep=sweep_get(project=self.project, sweep_id=sweep_id), actor=request.user)
        return Response(sweep_detail_data(project=self.project, sweep_id=sweep_id))


class SweepResumeApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="sweeps_resume", tags=TAGS, request=None, responses=SweepDetailSerializer, errors=WRITE_ERRORS)
    def post(self, request, project_slug, sweep_id):
        sweep_resume(sweep=sweep_get(project=self.project, sweep_id=sweep_id), actor=request.user)
        return Response(sweep_detail_data(project=self.project, sweep_id=sweep_id))


class SweepSeedsAddApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="sweeps_seeds_add", tags=TAGS, request=SweepSeedsAddSerializer, responses=SweepDetailSerializer, errors=WRITE_ERRORS)
    def post(self, request, project_slug, sweep_id):
        serializer = SweepSeedsAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sweep_seeds_add(sweep=sweep_get(project=self.project, sweep_id=sweep_id), seeds=serializer.validated_data["seeds"], actor=request.user)
        return Response(sweep_detail_data(project=self.project, sweep_id=sweep_id))
