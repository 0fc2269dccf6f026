"""Sweep pages: the list, one sweep's comparison table with its Pareto charts per suite, and the
Cancel, Resume and Add seeds buttons (POST, editors)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from sweeps.charts import pareto_figure
from sweeps.selectors import GATE_LABEL, sweep_comparison, sweep_get, sweeps_for_project
from sweeps.services import sweep_cancel, sweep_resume, sweep_seeds_add
from core.errors import LetheError
from versions.models import Role
from versions.views import get_or_404, paginate, project_access


@login_required
def sweep_list(request, slug):
    access = project_access(request, slug)
    page = paginate(request, sweeps_for_project(project=access.project))
    return render(request, "sweeps/sweep_list.html", {**access.context(), "page": page, "sweeps": page.object_list})


@login_required
def sweep_detail(request, slug, sweep_id):
    access = project_access(request, slug)
    sweep = get_or_404(sweep_get, project=access.project, sweep_id=sweep_id)
    comparison = sweep_comparison(sweep=sweep)
    model = sweep.parent_checkpoint.model.name
    links = {}
    for row in comparison["rows"]:
        checkpoint = row["checkpoint"]
        if checkpoint:
            row["checkpoint_url"] = reverse("versions:checkpoint", args=[slug, model, checkpoint["number"]])
            links[row["id"]] = row["checkpoint_url"]
        for cell in row["suites"]:
            if cell["evaluation"]:
                cell["evaluation_url"] = reverse("evals:detail", args=[slug, cell["evaluation"]])
            if checkpoint and cell["status"] == "succeeded":
                cell["promote_url"] = reverse("versions:model-label", args=[slug, model, GATE_LABEL]) + f"?target={checkpoint['number']}&evaluation={cell['evaluation']}"
    best = [set(per_suite.values()) for per_suite in comparison["best_per_method"]]
    for row in comparison["rows"]:
        for index, cell in enumerate(row["suites"]):
            cell["is_best"] = row["id"] in best[index]
    charts = [
        {
            "id": f"pareto-{index}" if axis == "failure_to_help" else f"pareto-utility-{index}",
            "suite": suite,
            "label": f"Attack success against {'failure to help' if axis == 'failure_to_help' else 'utility loss'} per configuration",
            "figure": pareto_figure(comparison, suite_index=index, links=links, axis=axis),
        }
        for index, suite in enumerate(comparison["suites"])
        for axis in ("failure_to_help", "utility")
    ]
    return render(
        request,
        "sweeps/sweep_detail.html",
        {
            **access.context(),
            "sweep": sweep,
            "comparison": comparison,
            "charts": charts,
            "gate_label": GATE_LABEL,
        },
    )


@login_required
@require_POST
def sweep_action(request, slug, sweep_id, action):
    """Cancel, resume or add seeds (``seeds``: comma-separated), then back to the sweep page with
    what happened (or why not) as a message."""
    access = project_access(request, slug, Role.EDITOR)
    sweep = get_or_404(sweep_get, project=access.project, sweep_id=sweep_id)
    try:
        if action == "cancel":
            sweep_cancel(sweep=sweep, actor=request.user)
            messages.success(request, f"Sweep {sweep.pk} cancelled: finished configurations stay; resume queues the rest again.")
        elif action == "resume":
            sweep_resume(sweep=sweep, actor=request.user)
            messages.success(request, f"Sweep {sweep.pk} resumed.")
        else:
            try:
                seeds = [int(part) for part in request.POST.get("seeds", "").replace(" ", "").split(",") if part]
            except ValueError:
                seeds = None
            added = sweep_seeds_add(sweep=sweep, seeds=seeds, actor=request.user)
            messages.success(request, f"Added {len(added)} configuration(s) to sweep {sweep.pk}.")
    except LetheError as error:
        messages.error(request, str(error))
    return redirect("sweeps:detail", slug, sweep.pk)
