"""REST views for judge calibration: import a labelled judgement set, start a calibration (a run),
list and read calibrations, and page through the rows where the judge and humans disagree.
Thin: validate, call a service or selector, serialize."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from core.errors import ValidationFailed
from evals import calibration_selectors as selectors
from evals import calibration_services as services
from evals.calibration_serializers import (
    CalibrationCreateInput,
    CalibrationDetailOutput,
    CalibrationOutput,
    DisagreementOutput,
    JudgementSetImportInput,
    calibration_detail_row,
    calibration_row,
    disagreement_row,
)
from versions.api.serializers import DatasetVersionSerializer
from versions.models import DatasetKind, Role
from versions.selectors import dataset_get, dataset_version_get, dataset_version_resolve


class JudgementSetImportApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @api_schema(
        operation_id="judgement_set_versions_import",
        tags=["calibrations"],
        request={"multipart/form-data": JudgementSetImportInput},
        responses={201: DatasetVersionSerializer},
        errors=(*WRITE_ERRORS, 413),
        description="A new version of a judgements dataset from a file: Lethe's JSONL/CSV columns (or a column mapping), or a public "
        "layout (xstest-completions, harmbench-val, do-not-answer). Every error names its line; nothing is half-imported.",
    )
    def post(self, request, project_slug, name):
        project = self.project
        dataset = dataset_get(project=project, name=name)
        data = JudgementSetImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.judgement_set_version_import(
            dataset=dataset,
            data=values["file"].read(),
            format=values["format"],
            actor=request.user,
            column_mapping=values["column_mapping"],
            label_mapping=values["label_mapping"],
            defaults=values["defaults"],
            message=values["message"],
        )
        return Response(DatasetVersionSerializer(dataset_version_get(dataset=dataset, number=version.number)).data, status=status.HTTP_201_CREATED)


class CalibrationListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="calibrations_list", tags=["calibrations"], responses=CalibrationOutput(many=True))
    def get(self, request, project_slug):
        project = self.project
        page = self.page(selectors.calibrations_for_project(project=project))
        return page.response([CalibrationOutput(calibration_row(calibration)).data for calibration in page.items])

    @api_schema(
        operation_id="calibrations_create",
        tags=["calibrations"],
        request=CalibrationCreateInput,
        responses={201: CalibrationOutput},
        errors=WRITE_ERRORS,
        description="Measure a judge on a judgements dataset version. It runs as a job (kind calibration); poll the calibration or its run until the run has succeeded.",
    )
    def post(self, request, project_slug):
        project = self.project
        data = CalibrationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            version = dataset_version_resolve(project=project, ref=values["set"], kind=DatasetKind.JUDGEMENTS)
        except ValidationFailed as exc:
            raise ValidationFailed(str(exc), fields={"set": [str(exc)]}) from None
        calibration = services.calibration_create(
            project=project,
            dataset_version=version,
            actor=request.user,
            judge=values["judge"],
            judge_config=values["judge_config"],
        )
        calibration = selectors.calibration_get(project=project, calibration_id=calibration.pk)
        return Response(CalibrationOutput(calibration_row(calibration)).data, status=status.HTTP_201_CREATED)


class CalibrationDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="calibrations_retrieve", tags=["calibrations"], responses=CalibrationDetailOutput)
    def get(self, request, project_slug, calibration_id):
        project = self.project
        calibration = selectors.calibration_get(project=project, calibration_id=calibration_id)
        return Response(CalibrationDetailOutput(calibration_detail_row(calibration)).data)


class CalibrationDisagreementListApi(ProjectApiView):
    """The rows where the judge and humans disagree. Responses are shown to reviewers and admins
    only (any may be harmful, whatever its row's `expected`), and every page that shows any is a
    `hazard.read` audit event."""

    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="calibration_disagreements_list",
        tags=["calibrations"],
        responses=DisagreementOutput(many=True),
        parameters=[OpenApiParameter("expected", str, enum=["refuse", "comply"])],
    )
    def get(self, request, project_slug, calibration_id):
        project = self.project
        calibration = selectors.calibration_get(project=project, calibration_id=calibration_id)
        expected = request.query_params.get("expected") or None
        if expected not in (None, "refuse", "comply"):
            raise ValidationFailed("expected must be 'refuse' or 'comply'.", fields={"expected": ["Expected refuse or comply."]})
        # All disagreements: a range of ranks, so a deep page costs what the first does.
        numbered = {"total": calibration.disagreement_count, "field": "rank", "newest_first": False} if expected is None else None
        page = self.page(selectors.calibration_disagreements(calibration=calibration, expected=expected), numbered=numbered)
        may_read_hazards = self.role >= Role.REVIEWER
        rows = [disagreement_row(item, may_read_hazards=may_read_hazards) for item in page.items]
        if may_read_hazards:
            services.calibration_hazard_read_record(project=project, actor=request.user, calibration=calibration, items=page.items)
        return page.response([DisagreementOutput(row).data for row in rows])
