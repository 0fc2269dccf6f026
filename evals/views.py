"""Evaluation pages: the list, the start form, and the A/B report (verdict, metrics with
intervals, charts, flipped cases, pinned settings), and the suite pages. Responses are hazardous
text unless the suite version is marked benign (evals.hazards): redacted below the reviewer role,
and every unredacted read is recorded as a ``hazard.read`` audit event."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from evals import charts
from evals.calibration_selectors import judge_calibration_status
from evals.forms import EvaluationStartForm, SuiteVersionBenignForm, evaluation_start_initial
from evals.hazards import responses_are_hazardous, responses_read_record, responses_readable
from evals.reporting import cross_modal_rows, findings, headline_rows, judge_calibration_line, judge_rows, non_inferiority_rows
from evals.selectors import (
    evaluation_case_results,
    evaluation_decisions,
    evaluation_get,
    evaluations_for_project,
    suite_get,
    suite_version_cases,
    suite_version_get,
    suites_for_project,
)
from core.errors import LetheError
from versions.forms import form_add_service_error
from versions.models import Role
from versions.views import get_or_404, paginate, project_access


@login_required
def case_image(request, case_id):
    """An image case's picture, read back verified against its sha256, for members of the case's
    project (others get 404, as for every project page)."""
    from evals.models import Case
    from versions.blob_store import blob_read_bytes

    case = Case.objects.filter(pk=case_id, image_blob__isnull=False).select_related("suite_version__suite__project", "image_blob").first()
    if case is None:
        raise Http404(f"No image case {case_id}.")
    project_access(request, case.suite_version.suite.project.slug)
    response = HttpResponse(blob_read_bytes(case.image_blob), content_type="image/png")
    # Content-addressed and immutable; private because membership decides who may see it.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    response["ETag"] = f'"{case.image_blob_id}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def evaluations_with_decisions(*, project, evaluations):
    """Set ``decision`` (the decision line, "" while there is no verdict) on each evaluation, for
    the evaluation table; a constant number of statements (evals.selectors.evaluation_decisions)."""
    evaluations = list(evaluations)
    decisions = evaluation_decisions(project=project, evaluations=evaluations)
    for evaluation in evaluations:
        evaluation.decision = decisions[evaluation.pk]["line"]
    return evaluations


def promotion_choices(*, access, evaluation, gate):
    """Each label arm A's version holds, with the gate's answer for moving it to B and, for users
    who may move that label, the link to its page with the target and this evaluation prefilled."""
    project, choices = access.project, []
    for answer in gate or []:
        may_move = access.role >= Role.EDITOR and (not answer["protected"] or access.role >= project.protected_label_role)
        url = ""
        if may_move and answer["same_owner"]:
            name = "versions:model-label" if answer["kind"] == "model" else "versions:prompt-label"
            url = f"{reverse(name, args=[project.slug, answer['owner'], answer['label']])}?target={answer['target']}&evaluation={evaluation.pk}"
        verdict = "PASS" if answer["passes"] else "REFUSE"
        choices.append({**answer, "url": url, "answer": verdict if answer["gated"] else f"not gated (evidence would {verdict})"})
    return choices


@login_required
def evaluation_list(request, slug):
    access = project_access(request, slug)
    page = paginate(request, evaluations_for_project(project=access.project).defer("metrics"))
    evaluations_with_decisions(project=access.project, evaluations=page.object_list)
    return render(request, "evals/evaluation_list.html", {**access.context(), "page": page, "evaluations": page.object_list})


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_start(request, slug):
    from evals.services import evaluation_create

    access = project_access(request, slug, Role.EDITOR)
    project = access.project
    repeated = None
    if request.method == "POST":
        form = EvaluationStartForm(request.POST, project=project)
        if form.is_valid():
            data = form.cleaned_data
            try:
                evaluation = evaluation_create(
                    project=project,
                    suite_version=data["suite_version"],
                    checkpoint_a=data["checkpoint_a"],
                    checkpoint_b=data["checkpoint_b"],
                    prompt_version_a=data["prompt_version_a"],
                    prompt_version_b=data["prompt_version_b"],
                    judge=data["judge"],
                    judge_config=data["judge_config"],
                    generation=data["generation"],
                    seed=data["seed"],
                    actor=request.user,
                    statistics=data["statistics"],
                    utility_dataset_version=data["utility_dataset_version"],
                )
            except LetheError as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"Evaluation {evaluation.pk} queued.")
                return redirect("evals:detail", slug, evaluation.pk)
    else:
        initial = {"checkpoint_a": request.GET.get("a"), "checkpoint_b": request.GET.get("b")}
        if request.GET.get("from"):
            if not request.GET["from"].isdigit():
                raise Http404(f"No evaluation {request.GET['from']!r} in {project.slug}.")
            repeated = get_or_404(evaluation_get, project=project, evaluation_id=int(request.GET["from"]))
            initial = evaluation_start_initial(repeated)
        form = EvaluationStartForm(project=project, initial=initial)
    return render(request, "evals/evaluation_start.html", {**access.context(), "form": form, "repeated": repeated}, status=400 if request.method == "POST" else 200)


@login_required
def evaluation_detail(request, slug, evaluation_id):
    access = project_access(request, slug)
    evaluation = get_or_404(evaluation_get, project=access.project, evaluation_id=evaluation_id)
    run = evaluation.run
    context = {
        **access.context(),
        "evaluation": evaluation,
        "run": run,
        "judge_calibration": judge_calibration_line(judge_calibration_status(project=access.project, judge=evaluation.judge)),
    }
    if not run.is_finished:
        context["poll_url"] = reverse("jobs:status", args=[slug, run.pk])
    metrics, statistics = evaluation.metrics or {}, evaluation.statistics or {}
    if metrics:
        hazardous = responses_are_hazardous(evaluation=evaluation)
        # Hazardous responses stay hidden until a reviewer asks for them, and that read is recorded.
        reveal = responses_readable(evaluation=evaluation, role=access.role) and (not hazardous or request.GET.get("reveal") == "1")
        flipped = paginate(request, evaluation_case_results(evaluation=evaluation, flipped=True))
        if reveal:
            responses_read_record(project=access.project, evaluation=evaluation, actor=request.user, case_results=flipped.object_list)
        cross_modal = statistics.get("cross_modal")
        if cross_modal:
            context.update(
                {
                    "cross_modal_rows": cross_modal_rows(statistics),
                    "transfer": cross_modal["transfer"],
                    "cross_modal_figure": charts.cross_modal_figure(cross_modal),
                }
            )
        context["judge_rows"] = judge_rows(metrics, cascade=evaluation.judge.get("name") == "cascade")
        if any(((metrics.get(arm) or {}).get("judge") or {}).get("categories") for arm in ("A", "B")):
            context["judge_categories_figure"] = charts.judge_categories_figure(metrics)
        decision = evaluation_decisions(project=access.project, evaluations=[evaluation])[evaluation.pk]
        context.update(
            {
                "decision": decision["line"],
                "promotions": promotion_choices(access=access, evaluation=evaluation, gate=decision["gate"]),
                "findings": findings(metrics),
                "headline_rows": headline_rows(metrics, statistics),
                "perplexity": {arm: (metrics.get(arm) or {}).get("utility", {}).get("perplexity") for arm in ("A", "B")},
                "reasons": statistics.get("reasons", []),
                "inconclusive_reasons": (statistics.get("coverage") or {}).get("inconclusive_reasons", []),
                "non_inferiority": non_inferiority_rows(statistics),
                "figures": [
                    ("headline-figure", charts.headline_figure(metrics), "Headline rates of arms A and B"),
                    ("category-figure", charts.arms_rate_figure(metrics, slice_name="category"), "Attack success by category, A versus B"),
                    ("family-figure", charts.arms_rate_figure(metrics, slice_name="attack_family"), "Attack success by attack family, A versus B"),
                    ("modality-figure", charts.arms_rate_figure(metrics, slice_name="modality"), "Attack success by modality, A versus B"),
                ],
                "page": flipped,
                "reveal": reveal,
                "responses_hazardous": hazardous,
            }
        )
    return render(request, "evals/evaluation_detail.html", context)


@login_required
def suite_list(request, slug):
    """The project's suites, each with its versions (newest first) and their benign marks."""
    from django.db.models import Prefetch

    from evals.models import SuiteVersion

    access = project_access(request, slug)
    versions = SuiteVersion.objects.select_related("benign_marked_by").order_by("-number")
    page = paginate(request, suites_for_project(project=access.project).prefetch_related(Prefetch("versions", queryset=versions)))
    return render(request, "evals/suite_list.html", {**access.context(), "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def suite_version_detail(request, slug, suite_name, number):
    """A suite version's cases, and (for reviewers) the form that marks it benign or removes the mark."""
    from evals.services import suite_version_mark_benign

    access = project_access(request, slug, Role.REVIEWER if request.method == "POST" else Role.VIEWER)
    suite = get_or_404(suite_get, project=access.project, name=suite_name)
    version = get_or_404(suite_version_get, suite=suite, number=number)
    status = 200
    form = SuiteVersionBenignForm(initial={"benign": "unmark" if version.is_marked_benign else "mark"})
    if request.method == "POST":
        form = SuiteVersionBenignForm(request.POST)
        if form.is_valid():
            try:
                suite_version_mark_benign(suite_version=version, actor=request.user, benign=form.cleaned_data["benign"] == "mark", reason=form.cleaned_data["reason"])
            except LetheError as exc:
                form_add_service_error(form, exc)
                status = exc.status_code
            else:
                done = "marked benign" if version.is_marked_benign else "no longer marked benign"
                messages.success(request, f"{suite.name} v{version.number} is {done}.")
                return redirect(request.path)
        else:
            status = 400
    page = paginate(request, suite_version_cases(suite_version=version))
    return render(
        request,
        "evals/suite_version.html",
        {
            **access.context(),
            "suite": suite,
            "version": version,
            "page": page,
            "form": form,
        },
        status=status,
    )
