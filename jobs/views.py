"""Run pages: the project's runs and the small JSON endpoint the pages poll for live progress
(session auth; not the REST API). One run's page (which sends a run to the page of the app that
made it) lives in pages.views."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

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


@login_required
def run_list_page(request, slug):
    access = project_access(request, slug)
    page = paginate(request, run_list(project=access.project))
    return render(request, "jobs/run_list.html", {**access.context(), "page": page})


@login_required
@require_GET
def run_status(request, slug, run_id):
    access = project_access(request, slug)
    run = get_or_404(run_get, project=access.project, run_id=run_id)
    return JsonResponse(run_state(run))
