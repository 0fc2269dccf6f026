"""Sweep pages: the list, and one sweep's comparison table with its Pareto chart per suite."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from sweeps.charts import pareto_figure
from sweeps.selectors import GATE_LABEL, sweep_comparison, sweep_get, sweeps_for_project
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
                cell["promote_url"] = (reverse("versions:model-label", args=[slug, model, GATE_LABEL])
                                       + f"?target={checkpoint['number']}&evaluation={cell['evaluation']}")
    best = [set(per_suite.values()) for per_suite in comparison["best_per_method"]]
    frontier = [set(ids) for ids in comparison["frontier"]]
    for row in comparison["rows"]:
        for index, cell in enumerate(row["suites"]):
            cell["is_best"] = row["id"] in best[index]
            cell["on_frontier"] = row["id"] in frontier[index]
    charts = [
        {"id": f"pareto-{index}", "suite": suite, "figure": pareto_figure(comparison, suite_index=index, links=links)}
        for index, suite in enumerate(comparison["suites"])
    ]
    return render(request, "sweeps/sweep_detail.html", {
        **access.context(), "sweep": sweep, "comparison": comparison, "charts": charts, "gate_label": GATE_LABEL,
    })
