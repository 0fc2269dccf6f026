"""REST views for suites and evaluations: validate, call a service or selector, serialize."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser
from rest_framework.response import Response

from core.api.parsers import JSONParser, MultiPartParser
from core.api.views import ProjectApiView
from core.errors import ValidationFailed
from evals import selectors, services
from evals.case_export import COLUMNS, FORMATS, export_response
from evals.case_filters import CHOICES, ONLY, case_result_filters
from evals.hazards import responses_export_record, responses_read_record, responses_readable
from evals.serializers import (
    CaseOutput,
    CaseResultOutput,
    EvaluationCreateInput,
    EvaluationDetailOutput,
    EvaluationSummaryOutput,
    SuiteCreateInput,
    SuiteDetailOutput,
    SuiteOutput,
    SuiteVersionBenignInput,
    SuiteVersionCreateInput,
    SuiteVersionImportInput,
    SuiteVersionOutput,
    case_result_row,
    evaluation_detail,
    evaluation_summary,
)
from versions.models import Role
from versions.selectors import checkpoint_resolve, dataset_version_resolve, prompt_version_resolve


class SuiteListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @extend_schema(responses=SuiteOutput(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.suites_for_project(project=project), serializer_class=SuiteOutput)

    @extend_schema(request=SuiteCreateInput, responses={201: SuiteOutput})
    def post(self, request, project_slug):
        project = self.project
        data = SuiteCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        suite = services.suite_create(project=project, actor=request.user, **data.validated_data)
        return Response(SuiteOutput(suite).data, status=status.HTTP_201_CREATED)


class SuiteDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @extend_schema(responses=SuiteDetailOutput)
    def get(self, request, project_slug, suite_name):
        project = self.project
        suite = selectors.suite_get(project=project, name=suite_name)
        versions = selectors.suite_versions(suite=suite)
        return Response({**SuiteOutput(suite).data, "versions": SuiteVersionOutput(versions, many=True).data})


class SuiteVersionListApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @extend_schema(request=SuiteVersionCreateInput, responses={201: SuiteVersionOutput})
    def post(self, request, project_slug, suite_name):
        project = self.project
        suite = selectors.suite_get(project=project, name=suite_name)
        data = SuiteVersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.suite_version_create(suite=suite, actor=request.user, **data.validated_data)
        return Response(SuiteVersionOutput(version).data, status=status.HTTP_201_CREATED)


class SuiteVersionImportApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request={"multipart/form-data": SuiteVersionImportInput}, responses={201: SuiteVersionOutput})
    def post(self, request, project_slug, suite_name):
        project = self.project
        suite = selectors.suite_get(project=project, name=suite_name)
        data = SuiteVersionImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.suite_version_import(
            suite=suite,
            data=values["file"].read(),
            format=values["format"],
            actor=request.user,
            column_mapping=values["column_mapping"],
            defaults=values["defaults"],
            transforms=values["transforms"],
            message=values["message"],
        )
        return Response(SuiteVersionOutput(version).data, status=status.HTTP_201_CREATED)


class SuiteVersionCaseListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @extend_schema(responses=CaseOutput(many=True))
    def get(self, request, project_slug, suite_name, number):
        project = self.project
        suite = selectors.suite_get(project=project, name=suite_name)
        version = selectors.suite_version_get(suite=suite, number=number)
        return self.paginated(selectors.suite_version_cases(suite_version=version), serializer_class=CaseOutput)


class EvaluationListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @extend_schema(operation_id="evaluations_list", responses=EvaluationSummaryOutput(many=True))
    def get(self, request, project_slug):
        project = self.project
        page = self.page(selectors.evaluations_for_project(project=project))
        decisions = selectors.evaluation_decisions(project=project, evaluations=page.items)
        return page.response([evaluation_summary(evaluation, decisions[evaluation.pk]) for evaluation in page.items])

    @extend_schema(request=EvaluationCreateInput, responses={201: EvaluationSummaryOutput})
    def post(self, request, project_slug):
        project = self.project
        data = EvaluationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        evaluation = services.evaluation_create(
            project=project,
            suite_version=selectors.suite_version_resolve(project=project, ref=values["suite"]),
            checkpoint_a=checkpoint_resolve(project=project, ref=values["checkpoint_a"]),
            checkpoint_b=checkpoint_resolve(project=project, ref=values["checkpoint_b"]),
            prompt_version_a=prompt_version_resolve(project=project, ref=values["prompt_version_a"]),
            prompt_version_b=prompt_version_resolve(project=project, ref=values["prompt_version_b"]),
            actor=request.user,
            judge=values["judge"],
            judge_config=values["judge_config"],
            generation=values["generation"],
            seed=values["seed"],
            utility_dataset_version=dataset_version_resolve(project=project, ref=values["utility_dataset_version"]),
            statistics=values["statistics"],
        )
        evaluation = selectors.evaluation_get(project=project, evaluation_id=evaluation.pk)
        return Response(evaluation_summary(evaluation), status=status.HTTP_201_CREATED)


class EvaluationDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @extend_schema(operation_id="evaluations_retrieve", responses=EvaluationDetailOutput)
    def get(self, request, project_slug, evaluation_id):
        project = self.project
        return Response(evaluation_detail(selectors.evaluation_get(project=project, evaluation_id=evaluation_id)))


FILTER_PARAMETERS = [
    OpenApiParameter("only", str, enum=list(ONLY), description="A view of the pairs: " + "; ".join(f"{k}: {v}" for k, v in ONLY.items()) + "."),
    OpenApiParameter("category", str),
    OpenApiParameter("family", str, description="The case's attack family."),
    OpenApiParameter("modality", str, enum=list(CHOICES["modality"])),
    OpenApiParameter("expected", str, enum=list(CHOICES["expected"])),
    OpenApiParameter("outcome_a", str, enum=list(CHOICES["outcome_a"]), description="The judge's outcome of arm A."),
    OpenApiParameter("outcome_b", str, enum=list(CHOICES["outcome_b"]), description="The judge's outcome of arm B."),
    OpenApiParameter("flipped", str, enum=["true", "false"]),
    OpenApiParameter("q", str, description="Text search over the prompts (case-insensitive substring, at most 200 characters)."),
]


def _case_results(view, evaluation_id):
    """The evaluation, filters, filtered results and whether the caller may read the responses."""
    evaluation = selectors.evaluation_get(project=view.project, evaluation_id=evaluation_id, with_arms=False)
    filters = case_result_filters(view.request.query_params)
    results = selectors.evaluation_case_results(evaluation=evaluation, **filters.selector_kwargs())
    readable = responses_readable(evaluation=evaluation, role=view.role)
    return evaluation, filters, results, readable


class EvaluationCaseResultListApi(ProjectApiView):
    """Per-case results, filtered as the explorer page filters them. Every response is hazardous
    text unless the suite version was marked benign by a reviewer: below reviewer it is redacted,
    and every page that shows any to a reviewer or admin is recorded as a `hazard.read` audit
    event (evals.hazards)."""

    roles = {"GET": Role.VIEWER}

    @extend_schema(operation_id="evaluation_results_list", responses=CaseResultOutput(many=True), parameters=FILTER_PARAMETERS)
    def get(self, request, project_slug, evaluation_id):
        evaluation, filters, results, readable = _case_results(self, evaluation_id)
        # All results: a range of positions (deep pages cost what the first does). Filtered:
        # COUNT and OFFSET over the one evaluation's rows, on its outcome indexes where it filters outcomes.
        numbered = None
        if filters.is_empty:
            numbered = {"total": selectors.evaluation_case_result_count(evaluation=evaluation), "field": "position", "newest_first": False}
        page = self.page(results, numbered=numbered)
        if readable:
            responses_read_record(project=self.project, evaluation=evaluation, actor=request.user, case_results=page.items)
        return page.response([CaseResultOutput(case_result_row(result, readable=readable)).data for result in page.items])


class _ExportNegotiation(DefaultContentNegotiation):
    """The export answers CSV or JSONL itself (``?format=``); errors are JSON like everywhere."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EvaluationCaseResultExportApi(ProjectApiView):
    """Exactly the filtered case results as CSV or JSONL, streamed. Responses are columns only for
    readers who may see them, and such an export is one `hazard.read` audit event naming every
    exported result; otherwise each row is `redacted` and the header X-Lethe-Responses says why."""

    roles = {"GET": Role.VIEWER}
    content_negotiation_class = _ExportNegotiation

    @extend_schema(
        operation_id="evaluation_results_export",
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), default="csv"), *FILTER_PARAMETERS],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/x-ndjson"): OpenApiTypes.STR},
        description="Columns: " + ", ".join(COLUMNS) + ", then response_a and response_b when the reader may see them, then redacted. "
        "CSV cells that a spreadsheet would run as a formula start with an apostrophe.",
    )
    def get(self, request, project_slug, evaluation_id):
        project = self.project
        evaluation, filters, results, readable = _case_results(self, evaluation_id)
        format = request.query_params.get("format") or "csv"
        if format not in FORMATS:
            raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}.", fields={"format": [f"Expected one of: {', '.join(FORMATS)}."]})
        if readable:
            responses_export_record(
                project=project, evaluation=evaluation, actor=request.user, case_result_ids=list(results.values_list("pk", flat=True)), format=format, filters=filters.as_dict()
            )
        return export_response(results, format=format, responses=readable, filename=f"{project.slug}-evaluation-{evaluation.pk}-cases")


class SuiteVersionBenignApi(ProjectApiView):
    """The benign mark of a suite version: PUT marks it (its evaluations' responses are then
    shown to every member, unaudited), DELETE removes the mark. Reviewers and admins."""

    roles = {"PUT": Role.REVIEWER, "DELETE": Role.REVIEWER}

    @extend_schema(operation_id="suite_versions_mark_benign", request=SuiteVersionBenignInput, responses=SuiteVersionOutput)
    def put(self, request, project_slug, suite_name, number):
        return self._mark(request, project_slug, suite_name, number, benign=True)

    @extend_schema(operation_id="suite_versions_unmark_benign", request=SuiteVersionBenignInput, responses=SuiteVersionOutput)
    def delete(self, request, project_slug, suite_name, number):
        return self._mark(request, project_slug, suite_name, number, benign=False)

    def _mark(self, request, project_slug, suite_name, number, *, benign):
        project = self.project
        version = selectors.suite_version_get(suite=selectors.suite_get(project=project, name=suite_name), number=number)
        data = SuiteVersionBenignInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.suite_version_mark_benign(suite_version=version, actor=request.user, benign=benign, **data.validated_data)
        return Response(SuiteVersionOutput(version).data)
