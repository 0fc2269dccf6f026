"""Run pages: the project's runs, one run's progress and log, and the small JSON endpoint the
pages poll for live progress (session auth; not the REST API)."""
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from jobs.logs import run_log_for
from jobs.selectors import run_get, run_list
from versions.views import get_or_404, paginate, project_access


def run_state(run, *, figures=None) -> dict:
    """What a polling page needs to redraw itself."""
    return {
        "id": run.pk,
        "status": run.status,
        "progress": run.progress,
        "progress_message": run.progress_message,
        "finished": run.is_finished,
        "error": run.error,
        "figures": figures or {},
    }


def run_page_url(run) -> str:
    """The page that shows a run best: its unlearning or evaluation page, else the plain run page."""
    from evals.models import Evaluation
    from unlearning.models import UnlearningRun

    unlearning_run_id = UnlearningRun.objects.filter(run=run).values_list("pk", flat=True).first()
    if unlearning_run_id is not None:
        return reverse("unlearning:detail", args=[run.project.slug, unlearning_run_id])
    evaluation_id = Evaluation.objects.filter(run=run).values_list("pk", flat=True).first()
    if evaluation_id is not None:
        return reverse("evals:detail", args=[run.project.slug, evaluation_id])
    return reverse("jobs:detail", args=[run.project.slug, run.pk]) + "?plain=1"


@login_required
def run_list_page(request, slug):
    access = project_access(request, slug)
    page = paginate(request, run_list(project=access.project))
    return render(request, "jobs/run_list.html", {**access.context(), "page": page})


@login_required
def run_detail(request, slug, run_id):
    access = project_access(request, slug)
    run = get_or_404(run_get, project=access.project, run_id=run_id)
    if request.GET.get("plain") != "1":
        target = run_page_url(run)
        if not target.endswith("?plain=1"):
            return redirect(target)
    return render(request, "jobs/run_detail.html", {**access.context(), "run": run, "run_log": run_log_for(run=run, project=access.project, user=request.user)})


@login_required
@require_GET
def run_status(request, slug, run_id):
    access = project_access(request, slug)
    run = get_or_404(run_get, project=access.project, run_id=run_id)
    return JsonResponse(run_state(run))
