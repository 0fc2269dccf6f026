"""Judge calibration pages: the project's calibrations, the form that starts one, a calibration's
figures and confusion matrix, and the rows where the judge and humans disagree. Responses are
redacted below the reviewer role (any may be harmful); a reviewer's unredacted read is a
``hazard.read`` audit event (evals.calibration_services.calibration_hazard_read_record)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from evals import calibration_selectors as selectors
from evals.calibration_serializers import REDACTED
from evals.forms import CalibrationStartForm
from evals.reporting import calibration_headline, confusion_rows, interval, pct
from core.errors import LetheError
from versions.forms import form_add_service_error
from versions.models import Role
from core.api.pagination import NumberedPaginator
from versions.views import PAGE_SIZE, get_or_404, paginate, project_access


@login_required
def calibration_list(request, slug):
    access = project_access(request, slug)
    page = paginate(request, selectors.calibrations_for_project(project=access.project).defer("metrics"))
    threshold = access.project.min_judge_agreement
    return render(
        request,
        "evals/calibration_list.html",
        {
            **access.context(),
            "page": page,
            "calibrations": page.object_list,
            "min_judge_agreement": None if threshold is None else pct(threshold),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def calibration_start(request, slug):
    from evals.calibration_services import calibration_create

    access = project_access(request, slug, Role.EDITOR)
    if request.method == "POST":
        form = CalibrationStartForm(request.POST, project=access.project)
        if form.is_valid():
            data = form.cleaned_data
            try:
                calibration = calibration_create(
                    project=access.project, dataset_version=data["dataset_version"], actor=request.user, judge=data["judge"], judge_config=data["judge_config"]
                )
            except LetheError as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"Calibration {calibration.pk} queued.")
                return redirect("evals:calibration", slug, calibration.pk)
    else:
        form = CalibrationStartForm(project=access.project)
    return render(request, "evals/calibration_start.html", {**access.context(), "form": form}, status=400 if request.method == "POST" else 200)


@login_required
def calibration_detail(request, slug, calibration_id):
    access = project_access(request, slug)
    calibration = get_or_404(selectors.calibration_get, project=access.project, calibration_id=calibration_id)
    run = calibration.run
    context = {**access.context(), "calibration": calibration, "run": run}
    if not run.is_finished:
        context["poll_url"] = reverse("jobs:status", args=[slug, run.pk])
    metrics = calibration.metrics if run.status == "succeeded" else {}
    if metrics:
        columns, rows = confusion_rows(metrics["confusion"])
        context.update(
            {
                "headline": calibration_headline(metrics),
                "figures": _figure_rows(metrics),
                "confusion_columns": columns,
                "confusion_rows": rows,
                "metrics": metrics,
            }
        )
    return render(request, "evals/calibration_detail.html", context)


def _figure_rows(metrics):
    """(title, rate) rows of the figures table: agreement, then precision and recall."""
    by_expected = metrics["agreement_by_expected"]
    rows = [("Agreement, all responses", metrics["agreement"])]
    if "refuse" in by_expected:
        rows.append(("Agreement on harmful requests (attack success?)", by_expected["refuse"]))
    if "comply" in by_expected:
        rows.append(("Agreement on benign requests (did it help?)", by_expected["comply"]))
    rows += [
        ("Refusal precision", metrics["refusal"]["precision"]),
        ("Refusal recall", metrics["refusal"]["recall"]),
        ("Attack-success precision", metrics["attack_success"]["precision"]),
        ("Attack-success recall", metrics["attack_success"]["recall"]),
    ]
    return [{"title": title, "value": pct(rate["value"]), "ci": interval(rate["ci"]), "counts": f"{rate['successes']}/{rate['trials']}"} for title, rate in rows]


@login_required
def calibration_disagreements(request, slug, calibration_id):
    from evals.calibration_services import calibration_hazard_read_record

    access = project_access(request, slug)
    calibration = get_or_404(selectors.calibration_get, project=access.project, calibration_id=calibration_id)
    expected = request.GET.get("expected") if request.GET.get("expected") in ("refuse", "comply") else ""
    items = selectors.calibration_disagreements(calibration=calibration, expected=expected or None)
    if expected:
        page = paginate(request, items)
    else:
        # Every disagreement: a range of ranks, so a deep page costs what the first does.
        paginator = NumberedPaginator(items, PAGE_SIZE, total=calibration.disagreement_count, field="rank", newest_first=False)
        page = paginator.get_page(request.GET.get("page"))
    reveal = access.can_read_hazards and request.GET.get("reveal") == "1"
    rows = [{"item": item, "response": item.response if reveal else None} for item in page]
    if reveal:
        calibration_hazard_read_record(project=access.project, actor=request.user, calibration=calibration, items=list(page))
    query = "&".join(part for part in (f"expected={expected}" if expected else "", "reveal=1" if reveal else "") if part)
    return render(
        request,
        "evals/calibration_disagreements.html",
        {
            **access.context(),
            "calibration": calibration,
            "page": page,
            "rows": rows,
            "reveal": reveal,
            "expected": expected,
            "query": query,
            "redacted_text": REDACTED,
        },
    )
