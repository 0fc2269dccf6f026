"""Pages that compose several apps: the project dashboard (labels, active runs, evaluations), a
model with its lineage graph (checkpoints, sweeps, unlearning runs, datasets, verdicts), a
checkpoint with its evaluations and producing run (and sweep), safety over time, and a run's
page (which sends each run to the page of the app that made it).

This app sits above the domain apps (versions, jobs, evals, unlearning, sweeps) so none of them
has to import another to draw a page; URL names stay those of the registry and of runs
(``versions:dashboard``, ``jobs:detail``, ...; see pages.urls). Views are thin: check access,
call selectors, render."""

import html
from datetime import datetime, timezone

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone as django_timezone

from evals.charts import modality_asr_figure
from evals.selectors import (
    evaluation_for_run,
    evaluations_for_checkpoint,
    evaluations_for_project,
    latest_verdicts_between,
    safety_arms_for_model,
)
from evals.views import evaluations_with_decisions
from jobs.logs import run_log_for
from jobs.models import RunStatus
from jobs.selectors import run_get, run_list
from sweeps.selectors import sweep_configuration_for_checkpoint, sweep_configurations_for_runs
from unlearning.selectors import unlearning_run_for_run, unlearning_run_producing, unlearning_runs_for_model
from versions import charts as registry_charts
from versions import selectors as registry
from versions.promotion import project_gate_settings
from versions.views import get_or_404, paginate_history, project_access

# ---------------------------------------------------------------- the project dashboard


@login_required
def project_dashboard(request, slug):
    access = project_access(request, slug)
    project = access.project
    context = {
        **access.context(),
        "production_labels": list(registry.labels_named(project=project, name="production")),
        "label_events": list(registry.label_events_for_project(project=project)[:10]),
        "active_runs": list(run_list(project=project).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])[:20]),
        "evaluations": evaluations_with_decisions(project=project, evaluations=evaluations_for_project(project=project)[:10]),
        "prompts": list(project.prompts.order_by("name")[:100]),
        "models": list(project.models.order_by("name")[:100]),
        "datasets": list(project.datasets.order_by("name")[:100]),
    }
    return render(request, "versions/project_dashboard.html", context)


# ---------------------------------------------------------------- models, checkpoints and safety over time


FLIPPED_VERDICT = {"safer": "less safe", "less safe": "safer"}


def lineage_graph_figure(*, model, slug, labels):
    """The model's lineage graph (``lineage_graph``) drawn by versions.charts.lineage_figure."""
    nodes, links = lineage_graph(model=model, slug=slug, labels=labels)
    return registry_charts.lineage_figure(nodes, links, title=f"Lineage of {model.name}")


def lineage_graph(*, model, slug, labels):
    """``(nodes, links)`` of the model's lineage: its checkpoints (and parents in other models),
    the unlearning runs started from them, the sweeps that started some of those runs (parent ->
    sweep -> each of its runs, instead of parent -> run), the dataset versions those runs and the
    edges forgot and retained, label badges, and each edge's latest verdict. A fixed number of
    queries."""
    checkpoints, edges = registry.lineage_graph(model=model)
    badges: dict[int, list[str]] = {}
    for label in labels:  # the model's labels, by name
        badges.setdefault(label.checkpoint_id, []).append(label.name)
    names = {c.pk: f"{model.name}@{c.number}" for c in checkpoints}
    nodes = [
        registry_charts.LineageNode(
            id=("checkpoint", c.pk),
            label=names[c.pk],
            kind=c.kind,
            badges=tuple(badges.get(c.pk, ())),
            hover=f"{names[c.pk]} ({c.kind}) {html.escape(c.message[:60])}",
            url=reverse("versions:checkpoint", args=[slug, model.name, c.number]),
        )
        for c in checkpoints
    ]
    for edge in edges:
        parent = edge.parent
        if parent.pk not in names:
            names[parent.pk] = f"{parent.model.name}@{parent.number}"
            nodes.append(
                registry_charts.LineageNode(
                    id=("checkpoint", parent.pk),
                    label=names[parent.pk],
                    kind="external",
                    hover=f"{names[parent.pk]} ({parent.kind})",
                    url=reverse("versions:checkpoint", args=[slug, parent.model.name, parent.number]),
                )
            )
    verdicts = latest_verdicts_between(model=model, pairs=[(e.parent_id, e.child_id) for e in edges])
    runs = unlearning_runs_for_model(model=model)
    produced_by_run = {run["produced_checkpoint_id"] for run in runs if run["produced_checkpoint_id"]}
    datasets: dict[int, tuple[str, int]] = {}
    links = []
    for edge in edges:
        found = verdicts.get((edge.parent_id, edge.child_id))
        verdict, hover, url = "", "", ""
        if found:
            verdict = found["verdict"] if found["child_is_b"] else FLIPPED_VERDICT.get(found["verdict"], found["verdict"])
            hover = f"evaluation {found['id']}: {names[edge.child_id]} against {names[edge.parent_id]}: {verdict}"
            url = reverse("evals:detail", args=[slug, found["id"]])
        links.append(
            registry_charts.LineageLink(
                parent=("checkpoint", edge.parent_id),
                child=("checkpoint", edge.child_id),
                relation=edge.relation,
                method=edge.method,
                verdict=verdict,
                verdict_hover=hover,
                verdict_url=url,
            )
        )
    # What an edge made without a run (registered by hand) forgot and retained, by content hash.
    hashed = [e for e in edges if e.child_id not in produced_by_run and (e.forget_dataset_sha256 or e.retain_dataset_sha256)]
    by_sha = registry.dataset_versions_by_sha256(project=model.project, sha256s=[sha for e in hashed for sha in (e.forget_dataset_sha256, e.retain_dataset_sha256)])
    for edge in hashed:
        for role, sha in (("forget", edge.forget_dataset_sha256), ("retain", edge.retain_dataset_sha256)):
            for version in by_sha.get(sha, [])[:1]:
                datasets[version.pk] = (version.dataset.name, version.number)
                links.append(registry_charts.LineageLink(parent=("dataset", version.pk), child=("checkpoint", edge.child_id), relation=role, style="data"))
    sweeps = sweep_configurations_for_runs(unlearning_run_ids=[run["id"] for run in runs])
    for sweep in sweeps["sweeps"].values():
        name = f" {html.escape(sweep['name'][:60])}" if sweep["name"] else ""
        nodes.append(
            registry_charts.LineageNode(
                id=("sweep", sweep["id"]),
                label=f"sweep {sweep['id']}",
                kind="sweep",
                hover=(
                    f"sweep {sweep['id']}{name} from {names.get(sweep['parent_checkpoint_id'], '?')}, {sweep['status']}: "
                    f"{sweep['configuration_count']} configurations, {sweep['succeeded_count']} succeeded, {sweep['failed_count']} failed"
                ),
                url=reverse("sweeps:detail", args=[slug, sweep["id"]]),
            )
        )
        links.append(registry_charts.LineageLink(parent=("checkpoint", sweep["parent_checkpoint_id"]), child=("sweep", sweep["id"]), relation="sweep", style="run"))
    for run in runs:
        run_id = ("run", run["id"])
        configuration = sweeps["by_run"].get(run["id"])
        of_sweep = f", configuration #{configuration['position']} of sweep {configuration['sweep_id']}" if configuration else ""
        nodes.append(
            registry_charts.LineageNode(
                id=run_id,
                label=f"run {run['id']}",
                kind="run",
                hover=f"unlearning run {run['id']}: {run['method']} from {names.get(run['parent_checkpoint_id'], '?')}, {run['status']}{of_sweep}",
                url=reverse("unlearning:detail", args=[slug, run["id"]]),
            )
        )
        if configuration:
            links.append(registry_charts.LineageLink(parent=("sweep", configuration["sweep_id"]), child=run_id, relation="configuration", method=run["method"], style="run"))
        else:
            links.append(registry_charts.LineageLink(parent=("checkpoint", run["parent_checkpoint_id"]), child=run_id, relation="input", method=run["method"], style="run"))
        if run["produced_checkpoint_id"]:
            links.append(registry_charts.LineageLink(parent=run_id, child=("checkpoint", run["produced_checkpoint_id"]), relation="produced", style="run"))
        for role in ("forget", "retain"):
            version_id = run[f"{role}_dataset_version_id"]
            if version_id:
                datasets[version_id] = (run[f"{role}_dataset_version__dataset__name"], run[f"{role}_dataset_version__number"])
                links.append(registry_charts.LineageLink(parent=("dataset", version_id), child=run_id, relation=role, style="data"))
    for version_id, (name, number) in datasets.items():
        nodes.append(
            registry_charts.LineageNode(
                id=("dataset", version_id),
                label=f"{name}@{number}",
                kind="dataset",
                hover=f"dataset {name} v{number}",
                url=reverse("versions:dataset-version", args=[slug, name, number]),
            )
        )
    return nodes, links


@login_required
def model_detail(request, slug, model_name):
    access = project_access(request, slug)
    model = get_or_404(registry.model_get, project=access.project, name=model_name)
    page = paginate_history(request, registry.checkpoints_for_model(model=model), model.checkpoint_count)
    page.object_list = registry.checkpoint_rows_complete(page.object_list)
    labels = list(model.labels.select_related("checkpoint").order_by("name"))
    return render(
        request,
        "versions/model_detail.html",
        {
            **access.context(),
            "model": model,
            "page": page,
            "labels": labels,
            "lineage_figure": lineage_graph_figure(model=model, slug=slug, labels=labels),
        },
    )


@login_required
def checkpoint_detail(request, slug, model_name, number):
    access = project_access(request, slug)
    checkpoint = get_or_404(registry.checkpoint_get_by_name, project=access.project, model_name=model_name, number=number)
    parents, children = registry.checkpoint_lineage_edges(checkpoint=checkpoint)
    # What each parent edge forgot and retained, by content hash, named as dataset@version.
    datasets = registry.dataset_versions_by_sha256(project=access.project, sha256s=[sha for edge in parents for sha in (edge.forget_dataset_sha256, edge.retain_dataset_sha256)])
    for edge in parents:
        edge.forget_versions = datasets.get(edge.forget_dataset_sha256, [])
        edge.retain_versions = datasets.get(edge.retain_dataset_sha256, [])
    unlearning_run = unlearning_run_producing(checkpoint=checkpoint)
    produced_by = unlearning_run.run if unlearning_run is not None else None
    sweep_configuration = sweep_configuration_for_checkpoint(checkpoint=checkpoint) if unlearning_run is not None else None
    return render(
        request,
        "versions/checkpoint_detail.html",
        {
            **access.context(),
            "model": checkpoint.model,
            "checkpoint": checkpoint,
            "files": list(registry.checkpoint_files(checkpoint=checkpoint)),
            "parents": parents,
            "children": children,
            "labels": list(checkpoint.labels.order_by("name")),
            "tags": list(checkpoint.tags.order_by("name")),
            "evaluations": list(evaluations_for_checkpoint(checkpoint=checkpoint)[:50]),
            "produced_by": produced_by,
            "unlearning_run": unlearning_run,
            "sweep_configuration": sweep_configuration,
            "weight_change_figure": registry_charts.weight_change_figure(checkpoint.weight_change) if checkpoint.weight_change else None,
        },
    )


def _rate(overall, name):
    rate = overall.get(name) or {}
    ci = rate.get("ci")
    return rate.get("value"), tuple(ci) if ci else None


def chart_time(moment):
    """A time as plotly's date axes read it: UTC, no offset."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def safety_points(*, model, arms, lineage_order):
    """One point per checkpoint per evaluation (safety_arms_for_model); an evaluation
    with the same checkpoint in both arms (two prompts) gives one point, its arm B's."""
    by_key = {}
    for arm in arms:
        key = (arm["evaluation_id"], arm["checkpoint_id"])
        if key in by_key:
            by_key[key] = (arm, "A and B")
        else:
            by_key[key] = (arm, arm["arm"])
    points = []
    for arm, which in by_key.values():
        asr, asr_ci = _rate(arm["overall"], "asr")
        over_refusal, over_refusal_ci = _rate(arm["overall"], "over_refusal_rate")
        points.append(
            registry_charts.SafetyPoint(
                checkpoint=f"{model.name}@{arm['number']}",
                lineage_order=lineage_order[arm["checkpoint_id"]],
                at=chart_time(datetime.fromisoformat(arm["at"])),
                suite=arm["suite"],
                evaluation_id=arm["evaluation_id"],
                arm=which,
                asr=asr,
                asr_ci=asr_ci,
                over_refusal=over_refusal,
                over_refusal_ci=over_refusal_ci,
                perplexity=arm["utility"].get("perplexity"),
            )
        )
    return points


def modality_asr_points(*, model, arms, lineage_order):
    """ASR per modality for each evaluated arm (vision-language evaluations contribute a text
    and an image point per checkpoint)."""
    points = []
    for arm in arms:
        for modality, rates in arm["by_modality"].items():
            asr = rates.get("asr") or {}
            points.append(
                {
                    "checkpoint": f"{model.name}@{arm['number']}",
                    "lineage_order": lineage_order[arm["checkpoint_id"]],
                    "at": arm["at"],
                    "suite": arm["suite"],
                    "modality": modality,
                    "asr": asr.get("value"),
                    "ci": asr.get("ci"),
                }
            )
    return points


LABEL_HISTORY_LIMIT = 200


def _perplexity_reference(*, points, intervals, project):
    """The perplexity a candidate may reach and still pass non-inferiority against the checkpoint
    production points at now (its latest measured perplexity x the project's margin), or None."""
    current = next((i.checkpoint for i in intervals if i.label == "production" and i.current), None)
    measured = [p for p in points if p.checkpoint == current and p.perplexity is not None]
    if not measured:
        return None
    margin = project_gate_settings(project)["perplexity_ratio_margin"]
    latest = max(measured, key=lambda p: p.at)
    return latest.perplexity * margin, f"non-inferiority limit: {current}'s perplexity × {margin:g}"


@login_required
def model_safety(request, slug, model_name):
    access = project_access(request, slug)
    model = get_or_404(registry.model_get, project=access.project, name=model_name)
    arms = safety_arms_for_model(model=model)
    # Along the lineage: the evaluated checkpoints by generation, then number. Only those are
    # read, not the model's whole graph (thousands of checkpoints on a long chain).
    evaluated = {arm["checkpoint_id"]: (arm["generation"], arm["number"]) for arm in arms}
    lineage_order = {pk: index for index, pk in enumerate(sorted(evaluated, key=evaluated.get))}
    points = safety_points(model=model, arms=arms, lineage_order=lineage_order)
    history = registry.label_history_for_model(model=model, limit=LABEL_HISTORY_LIMIT)
    intervals = registry_charts.label_intervals(
        [(label, chart_time(at), action, None if number is None else f"{model.name}@{number}") for label, at, action, number in history], now=chart_time(django_timezone.now())
    )
    references = {"perplexity": _perplexity_reference(points=points, intervals=intervals, project=access.project)}
    charts_shown = []
    for metric in ("asr", "over_refusal", "perplexity"):
        title = registry_charts.METRIC_TITLES[metric]
        charts_shown.append(
            {
                "id": f"safety-{metric}-time",
                "label": f"{title} of {model.name} over time, with label intervals",
                "figure": registry_charts.safety_time_figure(points, metric=metric, intervals=intervals, reference=references.get(metric)),
            }
        )
        charts_shown.append(
            {"id": f"safety-{metric}-lineage", "label": f"{title} of {model.name} along the lineage", "figure": registry_charts.safety_figure(points, metric=metric)}
        )
    modality_points = modality_asr_points(model=model, arms=arms, lineage_order=lineage_order)
    if any(point["modality"] == "image+text" for point in modality_points):
        charts_shown.insert(
            2, {"id": "safety-asr-by-modality", "label": f"Attack success rate of {model.name} by modality along the lineage", "figure": modality_asr_figure(modality_points)}
        )
    rows = [
        {
            "point": point,
            "asr": registry_charts.interval_text(point.asr, point.asr_ci),
            "over_refusal": registry_charts.interval_text(point.over_refusal, point.over_refusal_ci),
            "perplexity": "—" if point.perplexity is None else f"{point.perplexity:.2f}",
        }
        for point in sorted(points, key=lambda p: (p.at, p.evaluation_id, p.arm))
    ]
    return render(
        request,
        "versions/model_safety.html",
        {
            **access.context(),
            "model": model,
            "charts": charts_shown,
            "point_count": len(points),
            "rows": rows,
            "intervals": intervals,
            "history_limited": len(history) == LABEL_HISTORY_LIMIT,
        },
    )


# ---------------------------------------------------------------- runs


def run_page_url(run) -> str:
    """The page that shows a run best: its unlearning or evaluation page, else the plain run page."""
    unlearning_run_id = unlearning_run_for_run(run=run)
    if unlearning_run_id is not None:
        return reverse("unlearning:detail", args=[run.project.slug, unlearning_run_id])
    evaluation_id = evaluation_for_run(run=run)
    if evaluation_id is not None:
        return reverse("evals:detail", args=[run.project.slug, evaluation_id])
    return reverse("jobs:detail", args=[run.project.slug, run.pk]) + "?plain=1"


@login_required
def run_detail(request, slug, run_id):
    access = project_access(request, slug)
    run = get_or_404(run_get, project=access.project, run_id=run_id)
    if request.GET.get("plain") != "1":
        target = run_page_url(run)
        if not target.endswith("?plain=1"):
            return redirect(target)
    return render(request, "jobs/run_detail.html", {**access.context(), "run": run, "run_log": run_log_for(run=run, project=access.project, user=request.user)})
