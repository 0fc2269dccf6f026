"""The per-case explorer of an evaluation: every case result with both arms' outcomes, filtered by
the query string (evals.case_filters), paged, and exported as CSV or JSONL. Responses are
hazardous unless the suite version is marked benign (evals.hazards): redacted below the reviewer
role, hidden from reviewers until they reveal them, and every unredacted read, on a page or in an
export, is a ``hazard.read`` audit event."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import render

from evals.case_export import FORMATS, OMITTED_NOTE, export_response
from evals.case_filters import CHOICES, ONLY, CaseResultFilters, case_result_filters
from evals.hazards import responses_are_hazardous, responses_export_record, responses_read_record, responses_readable
from evals.models import Modality, Outcome
from evals.selectors import evaluation_case_facets, evaluation_case_result_count, evaluation_case_results, evaluation_get
from core.api.pagination import NumberedPaginator
from core.errors import ValidationFailed
from versions.views import PAGE_SIZE, get_or_404, project_access

PER_PAGE = PAGE_SIZE


def _explorer(request, slug, evaluation_id):
    """The project access, the evaluation, its filters (or the error that refused them), and
    whether this request shows responses."""
    access = project_access(request, slug)
    evaluation = get_or_404(evaluation_get, project=access.project, evaluation_id=evaluation_id, with_arms=False)
    try:
        filters, error = case_result_filters(request.GET), None
    except ValidationFailed as exc:
        filters, error = CaseResultFilters(), exc
    hazardous = responses_are_hazardous(evaluation=evaluation)
    # As on the report: hazardous responses stay hidden until a reviewer asks for them.
    reveal = responses_readable(evaluation=evaluation, role=access.role) and (not hazardous or request.GET.get("reveal") == "1")
    return access, evaluation, filters, error, hazardous, reveal


@login_required
def evaluation_cases(request, slug, evaluation_id):
    access, evaluation, filters, error, hazardous, reveal = _explorer(request, slug, evaluation_id)
    results = evaluation_case_results(evaluation=evaluation, **filters.selector_kwargs())
    if error is not None:
        results = results.none()
    if filters.is_empty and error is None:
        # Every case: a range of positions, so a deep page costs what the first does.
        total = evaluation_case_result_count(evaluation=evaluation)
        page = NumberedPaginator(results, PER_PAGE, total=total, field="position", newest_first=False).get_page(request.GET.get("page"))
    else:
        # Filtered: COUNT and OFFSET over one evaluation's rows, on its outcome indexes where it filters outcomes.
        from django.core.paginator import Paginator

        page = Paginator(results, PER_PAGE).get_page(request.GET.get("page"))
    if reveal:
        responses_read_record(project=access.project, evaluation=evaluation, actor=request.user, case_results=page.object_list)
    reveal_query = "1" if reveal and hazardous else None
    return render(
        request,
        "evals/evaluation_cases.html",
        {
            **access.context(),
            "evaluation": evaluation,
            "page": page,
            "filters": filters,
            "filter_error": error,
            "reveal": reveal,
            "responses_hazardous": hazardous,
            "facets": evaluation_case_facets(evaluation=evaluation),
            "only_choices": list(ONLY.items()),
            "modalities": Modality.values,
            "expected_choices": CHOICES["expected"],
            "outcomes": Outcome.values,
            "query": filters.query(reveal=reveal_query),
            "hide_query": filters.query(),
            "reveal_query_string": filters.query(reveal="1"),
            "csv_query": filters.query(format="csv", reveal=reveal_query),
            "jsonl_query": filters.query(format="jsonl", reveal=reveal_query),
            "omitted_note": OMITTED_NOTE,
        },
        status=400 if error is not None else 200,
    )


@login_required
def evaluation_cases_export(request, slug, evaluation_id):
    """The explorer's filtered cases as ``?format=csv`` or ``jsonl``: responses only as the page
    would show them (a reviewer's export of hazardous responses asks for them with ``reveal=1``, as
    the page does, and is audited)."""
    access, evaluation, filters, error, hazardous, reveal = _explorer(request, slug, evaluation_id)
    format = request.GET.get("format", "csv")
    if error is not None or format not in FORMATS:
        return HttpResponseBadRequest(str(error) if error is not None else f"No export format {format!r}: csv or jsonl.", content_type="text/plain; charset=utf-8")
    results = evaluation_case_results(evaluation=evaluation, **filters.selector_kwargs())
    if reveal:
        responses_export_record(
            project=access.project, evaluation=evaluation, actor=request.user, case_result_ids=list(results.values_list("pk", flat=True)), format=format, filters=filters.as_dict()
        )
    return export_response(results, format=format, responses=reveal, filename=f"{access.project.slug}-evaluation-{evaluation.pk}-cases")
