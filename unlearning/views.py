"""Unlearning pages: start a run from a checkpoint, and follow one live (progress and the loss
curve by term, polled every 2 s while it runs)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from jobs.logs import run_log_for
from jobs.views import run_state
from unlearning.charts import loss_curve_figure
from unlearning.forms import UnlearningStartForm
from unlearning.selectors import unlearning_run_get
from versions import selectors
from core.errors import LetheError
from versions.forms import form_add_service_error
from versions.models import Role
from versions.views import get_or_404, project_access

LOSS_FIGURE_ID = "loss-figure"


def _method_names():
    # The engine imports torch; only this page needs the list.
    from unlearning.engine.methods import METHODS

    return sorted(METHODS)


@login_required
@require_http_methods(["GET", "POST"])
def unlearning_start(request, slug, model_name, number):
    from unlearning.services import unlearning_run_create

    access = project_access(request, slug, Role.EDITOR)
    checkpoint = get_or_404(selectors.checkpoint_get_by_name, project=access.project, model_name=model_name, number=number)
    form_options = {"project": access.project, "methods": _method_names()}
    if request.method == "POST":
        form = UnlearningStartForm(request.POST, **form_options)
        if form.is_valid():
            data = form.cleaned_data
            try:
                unlearning_run = unlearning_run_create(
                    parent_checkpoint=checkpoint,
                    method=data["method"],
                    hyperparameters=data["hyperparameters"],
                    forget_dataset_version=data["forget_dataset_version"],
                    retain_dataset_version=data["retain_dataset_version"],
                    seed=data["seed"],
                    branch_label=data["branch_label"],
                    actor=request.user,
                )
            except LetheError as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"Unlearning run {unlearning_run.run_id} queued.")
                return redirect("unlearning:detail", slug, unlearning_run.pk)
    else:
        form = UnlearningStartForm(**form_options)
    return render(
        request,
        "unlearning/unlearning_start.html",
        {**access.context(), "model": checkpoint.model, "checkpoint": checkpoint, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def unlearning_detail(request, slug, unlearning_run_id):
    access = project_access(request, slug)
    unlearning_run = get_or_404(unlearning_run_get, project=access.project, unlearning_run_id=unlearning_run_id)
    run = unlearning_run.run
    return render(
        request,
        "unlearning/unlearning_detail.html",
        {
            **access.context(),
            "unlearning_run": unlearning_run,
            "run": run,
            "run_log": run_log_for(run=run, project=access.project, user=request.user),
            "loss_figure": loss_curve_figure(unlearning_run.loss_curve),
            "loss_figure_id": LOSS_FIGURE_ID,
            "poll_url": None if run.is_finished else reverse("unlearning:progress", args=[slug, unlearning_run.pk]),
        },
    )


@login_required
@require_GET
def unlearning_progress(request, slug, unlearning_run_id):
    access = project_access(request, slug)
    unlearning_run = get_or_404(unlearning_run_get, project=access.project, unlearning_run_id=unlearning_run_id)
    return JsonResponse(run_state(unlearning_run.run, figures={LOSS_FIGURE_ID: loss_curve_figure(unlearning_run.loss_curve)}))
