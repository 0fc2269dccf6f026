"""Server-rendered pages of the registry: projects, prompts, models, checkpoints, labels and
safety over time. Views are thin: check access, call selectors or a service, render."""
import html
from dataclasses import dataclass
from datetime import datetime, timezone

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone as django_timezone
from django.views.decorators.http import require_http_methods

from evals.selectors import evaluations_for_project
from versions import charts, diffing, selectors
from core.errors import Forbidden, LessSafeTarget, LetheError, NotFound
from versions.forms import DiffForm, LabelMoveForm, SignInForm, form_add_service_error
from versions.models import Project, Role
from versions.permissions import project_require
from versions.promotion import project_gate_settings

PAGE_SIZE = 25


# ---------------------------------------------------------------- helpers shared by every app's views


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: Role

    @property
    def can_edit(self):
        return self.role >= Role.EDITOR

    @property
    def can_read_hazards(self):
        return self.role >= Role.REVIEWER

    def context(self):
        return {"project": self.project, "role": self.role, "can_edit": self.can_edit, "can_read_hazards": self.can_read_hazards}


def project_access(request, slug, role=Role.VIEWER) -> ProjectAccess:
    """The project and the user's role in it; 404 for non-members (projects do not leak), 403
    for members below ``role``."""
    try:
        project, current = project_require(slug=slug, user=request.user, role=role)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from None
    return ProjectAccess(project=project, role=current)


def get_or_404(selector, **kwargs):
    try:
        return selector(**kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from None


def paginate(request, queryset, per_page=PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def paginate_history(request, queryset, total, per_page=PAGE_SIZE):
    """A page of a gap-free numbered history (1..total), cut by number range: flat at any depth."""
    from core.api.pagination import NumberedPaginator

    return NumberedPaginator(queryset, per_page, total=total).get_page(request.GET.get("page"))


# ---------------------------------------------------------------- signing in


class SignInView(LoginView):
    """The sign-in page. A locked-out attempt answers 429 with Retry-After, as the API does."""

    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


def audit_hazard_read(request, access, *, object_type, object_id, data):
    """Record that ``request.user`` read hazardous text (harmful completions) unredacted. The one
    place the registry's pages audit such a read."""
    from versions.services import hazard_read_record

    hazard_read_record(project=access.project, actor=request.user, object_type=object_type, object_id=object_id, data=data)


# ---------------------------------------------------------------- projects


@login_required
def project_list(request):
    page = paginate(request, selectors.projects_for_user(user=request.user))
    return render(request, "versions/project_list.html", {"page": page})


@login_required
def project_dashboard(request, slug):
    from evals.views import evaluations_with_decisions
    from jobs.models import RunStatus
    from jobs.selectors import run_list

    access = project_access(request, slug)
    project = access.project
    context = {
        **access.context(),
        "production_labels": list(selectors.labels_named(project=project, name="production")),
        "label_events": list(selectors.label_events_for_project(project=project)[:10]),
        "active_runs": list(run_list(project=project).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])[:20]),
        "evaluations": evaluations_with_decisions(project=project, evaluations=evaluations_for_project(project=project)[:10]),
        "prompts": list(project.prompts.order_by("name")[:100]),
        "models": list(project.models.order_by("name")[:100]),
        "datasets": list(project.datasets.order_by("name")[:100]),
    }
    return render(request, "versions/project_dashboard.html", context)


# ---------------------------------------------------------------- prompts


@login_required
def prompt_history(request, slug, prompt_name):
    access = project_access(request, slug)
    prompt = get_or_404(selectors.prompt_get, project=access.project, name=prompt_name)
    page = paginate_history(request, selectors.prompt_versions(prompt=prompt), prompt.version_count)
    page.object_list = selectors.prompt_version_rows_complete(page.object_list)
    diff_form = DiffForm(initial={"old": max(prompt.version_count - 1, 1), "new": prompt.version_count})
    return render(request, "versions/prompt_history.html", {
        **access.context(), "prompt": prompt, "page": page, "labels": list(prompt.labels.select_related("prompt_version").order_by("name")),
        "diff_form": diff_form,
    })


@login_required
def prompt_version_detail(request, slug, prompt_name, number):
    access = project_access(request, slug)
    prompt = get_or_404(selectors.prompt_get, project=access.project, name=prompt_name)
    version = get_or_404(selectors.prompt_version_get, prompt=prompt, number=number)
    return render(request, "versions/prompt_version.html", {
        **access.context(), "prompt": prompt, "version": version,
        "labels": list(version.labels.order_by("name")), "tags": list(version.tags.order_by("name")),
    })


@login_required
def prompt_diff(request, slug, prompt_name):
    access = project_access(request, slug)
    prompt = get_or_404(selectors.prompt_get, project=access.project, name=prompt_name)
    form = DiffForm(request.GET)
    diff = None
    if form.is_valid():
        try:
            old = selectors.prompt_version_get(prompt=prompt, number=form.cleaned_data["old"])
        except NotFound as exc:
            form.add_error("old", str(exc))
        try:
            new = selectors.prompt_version_get(prompt=prompt, number=form.cleaned_data["new"])
        except NotFound as exc:
            form.add_error("new", str(exc))
        if not form.errors:
            diff = selectors.versions_diff(old=old, new=new)
    view = "unified" if request.GET.get("view") == "unified" else "split"
    context = {**access.context(), "prompt": prompt, "form": form, "diff": diff, "view": view}
    if diff is not None:
        rows = diffing.highlighted(diff["side_by_side"])
        context.update({
            "rows": diffing.unified_rows(rows) if view == "unified" else rows,
            "split_url": f"?old={diff['old']}&new={diff['new']}",
            "unified_url": f"?old={diff['old']}&new={diff['new']}&view=unified",
        })
    return render(request, "versions/prompt_diff.html", context, status=200 if diff is not None else 400)


# ---------------------------------------------------------------- models and checkpoints


FLIPPED_VERDICT = {"safer": "less safe", "less safe": "safer"}


def lineage_graph_figure(*, model, slug, labels):
    """The model's lineage as a graph: its checkpoints (and parents in other models), the
    unlearning runs started from them, the dataset versions those runs and the edges forgot and
    retained, label badges, and each edge's latest verdict. A fixed number of queries."""
    from evals.selectors import latest_verdicts_between
    from unlearning.selectors import unlearning_runs_for_model

    checkpoints, edges = selectors.lineage_graph(model=model)
    badges: dict[int, list[str]] = {}
    for label in labels:  # the model's labels, by name
        badges.setdefault(label.checkpoint_id, []).append(label.name)
    names = {c.pk: f"{model.name}@{c.number}" for c in checkpoints}
    nodes = [
        charts.LineageNode(id=("checkpoint", c.pk), label=names[c.pk], kind=c.kind, badges=tuple(badges.get(c.pk, ())),
                           hover=f"{names[c.pk]} ({c.kind}) {html.escape(c.message[:60])}",
                           url=reverse("versions:checkpoint", args=[slug, model.name, c.number]))
        for c in checkpoints
    ]
    for edge in edges:
        parent = edge.parent
        if parent.pk not in names:
            names[parent.pk] = f"{parent.model.name}@{parent.number}"
            nodes.append(charts.LineageNode(id=("checkpoint", parent.pk), label=names[parent.pk], kind="external",
                                            hover=f"{names[parent.pk]} ({parent.kind})",
                                            url=reverse("versions:checkpoint", args=[slug, parent.model.name, parent.number])))
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
        links.append(charts.LineageLink(parent=("checkpoint", edge.parent_id), child=("checkpoint", edge.child_id),
                                        relation=edge.relation, method=edge.method, verdict=verdict, verdict_hover=hover,
                                        verdict_url=url))
    # What an edge made without a run (registered by hand) forgot and retained, by content hash.
    hashed = [e for e in edges if e.child_id not in produced_by_run and (e.forget_dataset_sha256 or e.retain_dataset_sha256)]
    by_sha = selectors.dataset_versions_by_sha256(
        project=model.project, sha256s=[sha for e in hashed for sha in (e.forget_dataset_sha256, e.retain_dataset_sha256)])
    for edge in hashed:
        for role, sha in (("forget", edge.forget_dataset_sha256), ("retain", edge.retain_dataset_sha256)):
            for version in by_sha.get(sha, [])[:1]:
                datasets[version.pk] = (version.dataset.name, version.number)
                links.append(charts.LineageLink(parent=("dataset", version.pk), child=("checkpoint", edge.child_id),
                                                relation=role, style="data"))
    for run in runs:
        run_id = ("run", run["id"])
        nodes.append(charts.LineageNode(
            id=run_id, label=f"run {run['id']}", kind="run",
            hover=f"unlearning run {run['id']}: {run['method']} from {names.get(run['parent_checkpoint_id'], '?')}, {run['status']}",
            url=reverse("unlearning:detail", args=[slug, run["id"]])))
        links.append(charts.LineageLink(parent=("checkpoint", run["parent_checkpoint_id"]), child=run_id, relation="input",
                                        method=run["method"], style="run"))
        if run["produced_checkpoint_id"]:
            links.append(charts.LineageLink(parent=run_id, child=("checkpoint", run["produced_checkpoint_id"]),
                                            relation="produced", style="run"))
        for role in ("forget", "retain"):
            version_id = run[f"{role}_dataset_version_id"]
            if version_id:
                datasets[version_id] = (run[f"{role}_dataset_version__dataset__name"], run[f"{role}_dataset_version__number"])
                links.append(charts.LineageLink(parent=("dataset", version_id), child=run_id, relation=role, style="data"))
    for version_id, (name, number) in datasets.items():
        nodes.append(charts.LineageNode(id=("dataset", version_id), label=f"{name}@{number}", kind="dataset",
                                        hover=f"dataset {name} v{number}",
                                        url=reverse("versions:dataset-version", args=[slug, name, number])))
    return charts.lineage_figure(nodes, links, title=f"Lineage of {model.name}")


@login_required
def model_detail(request, slug, model_name):
    access = project_access(request, slug)
    model = get_or_404(selectors.model_get, project=access.project, name=model_name)
    page = paginate_history(request, selectors.checkpoints_for_model(model=model), model.checkpoint_count)
    page.object_list = selectors.checkpoint_rows_complete(page.object_list)
    labels = list(model.labels.select_related("checkpoint").order_by("name"))
    return render(request, "versions/model_detail.html", {
        **access.context(), "model": model, "page": page, "labels": labels,
        "lineage_figure": lineage_graph_figure(model=model, slug=slug, labels=labels),
    })


@login_required
def checkpoint_detail(request, slug, model_name, number):
    access = project_access(request, slug)
    checkpoint = get_or_404(selectors.checkpoint_get_by_name, project=access.project, model_name=model_name, number=number)
    parents, children = selectors.checkpoint_lineage_edges(checkpoint=checkpoint)
    # What each parent edge forgot and retained, by content hash, named as dataset@version.
    datasets = selectors.dataset_versions_by_sha256(
        project=access.project, sha256s=[sha for edge in parents for sha in (edge.forget_dataset_sha256, edge.retain_dataset_sha256)])
    for edge in parents:
        edge.forget_versions = datasets.get(edge.forget_dataset_sha256, [])
        edge.retain_versions = datasets.get(edge.retain_dataset_sha256, [])
    produced_by = checkpoint.created_by_run
    unlearning_run = getattr(produced_by, "unlearning", None) if produced_by is not None else None
    return render(request, "versions/checkpoint_detail.html", {
        **access.context(),
        "model": checkpoint.model,
        "checkpoint": checkpoint,
        "files": list(selectors.checkpoint_files(checkpoint=checkpoint)),
        "parents": parents,
        "children": children,
        "labels": list(checkpoint.labels.order_by("name")),
        "tags": list(checkpoint.tags.order_by("name")),
        "evaluations": list(selectors.evaluations_for_checkpoint(checkpoint=checkpoint)[:50]),
        "produced_by": produced_by,
        "unlearning_run": unlearning_run,
        "weight_change_figure": charts.weight_change_figure(checkpoint.weight_change) if checkpoint.weight_change else None,
    })


def _rate(overall, name):
    rate = overall.get(name) or {}
    ci = rate.get("ci")
    return rate.get("value"), tuple(ci) if ci else None


def chart_time(moment):
    """A time as plotly's date axes read it: UTC, no offset."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def safety_points(*, model, arms, lineage_order):
    """One point per checkpoint per evaluation (selectors.safety_arms_for_model); an evaluation
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
        points.append(charts.SafetyPoint(
            checkpoint=f"{model.name}@{arm['number']}", lineage_order=lineage_order[arm["checkpoint_id"]],
            at=chart_time(datetime.fromisoformat(arm["at"])), suite=arm["suite"], evaluation_id=arm["evaluation_id"], arm=which,
            asr=asr, asr_ci=asr_ci, over_refusal=over_refusal, over_refusal_ci=over_refusal_ci,
            perplexity=arm["utility"].get("perplexity"),
        ))
    return points


def modality_asr_points(*, model, arms, lineage_order):
    """ASR per modality for each evaluated arm (vision-language evaluations contribute a text
    and an image point per checkpoint)."""
    points = []
    for arm in arms:
        for modality, rates in arm["by_modality"].items():
            asr = rates.get("asr") or {}
            points.append({
                "checkpoint": f"{model.name}@{arm['number']}", "lineage_order": lineage_order[arm["checkpoint_id"]], "at": arm["at"],
                "suite": arm["suite"], "modality": modality, "asr": asr.get("value"), "ci": asr.get("ci"),
            })
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
    model = get_or_404(selectors.model_get, project=access.project, name=model_name)
    arms = selectors.safety_arms_for_model(model=model)
    # Along the lineage: the evaluated checkpoints by generation, then number. Only those are
    # read, not the model's whole graph (thousands of checkpoints on a long chain).
    evaluated = {arm["checkpoint_id"]: (arm["generation"], arm["number"]) for arm in arms}
    lineage_order = {pk: index for index, pk in enumerate(sorted(evaluated, key=evaluated.get))}
    points = safety_points(model=model, arms=arms, lineage_order=lineage_order)
    history = selectors.label_history_for_model(model=model, limit=LABEL_HISTORY_LIMIT)
    intervals = charts.label_intervals(
        [(label, chart_time(at), action, None if number is None else f"{model.name}@{number}") for label, at, action, number in history],
        now=chart_time(django_timezone.now()))
    references = {"perplexity": _perplexity_reference(points=points, intervals=intervals, project=access.project)}
    charts_shown = []
    for metric in ("asr", "over_refusal", "perplexity"):
        title = charts.METRIC_TITLES[metric]
        charts_shown.append({"id": f"safety-{metric}-time", "label": f"{title} of {model.name} over time, with label intervals",
                             "figure": charts.safety_time_figure(points, metric=metric, intervals=intervals, reference=references.get(metric))})
        charts_shown.append({"id": f"safety-{metric}-lineage", "label": f"{title} of {model.name} along the lineage",
                             "figure": charts.safety_figure(points, metric=metric)})
    modality_points = modality_asr_points(model=model, arms=arms, lineage_order=lineage_order)
    if any(point["modality"] == "image+text" for point in modality_points):
        from evals.charts import modality_asr_figure

        charts_shown.insert(2, {"id": "safety-asr-by-modality", "label": f"Attack success rate of {model.name} by modality along the lineage",
                                "figure": modality_asr_figure(modality_points)})
    rows = [{"point": point, "asr": charts.interval_text(point.asr, point.asr_ci),
             "over_refusal": charts.interval_text(point.over_refusal, point.over_refusal_ci),
             "perplexity": "—" if point.perplexity is None else f"{point.perplexity:.2f}"}
            for point in sorted(points, key=lambda p: (p.at, p.evaluation_id, p.arm))]
    return render(request, "versions/model_safety.html", {
        **access.context(), "model": model, "charts": charts_shown, "point_count": len(points), "rows": rows,
        "intervals": intervals, "history_limited": len(history) == LABEL_HISTORY_LIMIT,
    })


# ---------------------------------------------------------------- datasets


@login_required
def dataset_detail(request, slug, dataset_name):
    access = project_access(request, slug)
    dataset = get_or_404(selectors.dataset_get, project=access.project, name=dataset_name)
    page = paginate(request, selectors.dataset_versions(dataset=dataset))
    return render(request, "versions/dataset_detail.html", {**access.context(), "dataset": dataset, "page": page})


@login_required
def dataset_version_detail(request, slug, dataset_name, number):
    """A dataset version's rows. Responses are hazardous text (a forget set holds harmful
    completions): redacted below the reviewer role; a reviewer's reveal is audited per page."""
    access = project_access(request, slug)
    dataset = get_or_404(selectors.dataset_get, project=access.project, name=dataset_name)
    version = get_or_404(selectors.dataset_version_get, dataset=dataset, number=number)
    reveal = access.can_read_hazards and request.GET.get("reveal") == "1"
    page = paginate(request, selectors.dataset_version_rows(dataset_version=version))
    if reveal and page.object_list:
        audit_hazard_read(request, access, object_type="dataset_version", object_id=version.pk,
                          data={"dataset": dataset.name, "version": version.number, "page": page.number})
    return render(request, "versions/dataset_version.html", {
        **access.context(), "dataset": dataset, "version": version, "page": page, "reveal": reveal,
        "has_category": any("category" in row for row in page.object_list),
    })


# ---------------------------------------------------------------- labels


def _label_owner(project, owner_kind, owner_name):
    if owner_kind == "prompt":
        return get_or_404(selectors.prompt_get, project=project, name=owner_name)
    return get_or_404(selectors.model_get, project=project, name=owner_name)


@login_required
@require_http_methods(["GET", "POST"])
def label_detail(request, slug, owner_kind, owner_name, label_name):
    """A label's history, and the form that moves it (promote or roll back): pick a version in the
    picker, Preview (what the move is, the latest evaluation between the two versions, the gate's
    answer), then Move label. ``?target=<number>&evaluation=<id>`` (or the history's ``?to=``)
    prefills the form and shows the preview at once."""
    access = project_access(request, slug, Role.EDITOR if request.method == "POST" else Role.VIEWER)
    owner = _label_owner(access.project, owner_kind, owner_name)
    try:
        label = selectors.label_get(project=access.project, owner_kind=owner_kind, owner_name=owner.name, name=label_name)
    except NotFound:
        label = None
    status = 200
    gate_failures = []
    preview = None
    if request.method == "POST":
        step = request.POST.get("step", "move")
        form = LabelMoveForm(request.POST, preview=step == "preview")
        if not form.is_valid():
            status = 400
        elif step == "preview" or _previewed_another(form):
            preview, error = _label_preview_from_form(form, owner_kind, owner, label_name)
            status = 200 if error is None else error.status_code
        else:
            error = _label_move_from_form(request, form, owner_kind, owner, label_name)
            if error is None:
                return redirect(request.path)
            # The message sits next to the field; the status says what kind of refusal it was.
            status = error.status_code
            if isinstance(error, LessSafeTarget):
                preview = error.impact
            refused = (error.fields or {}).get("evaluation")
            if isinstance(refused, list) and len(refused) > 1:
                gate_failures = refused
    else:
        target = request.GET.get("target") or request.GET.get("to")
        form = LabelMoveForm(initial={"target": target, "evaluation": request.GET.get("evaluation")})
        if target:
            # A prefilled target (the history's "to", an evaluation's "Promote B", a sweep row's "Promote") shows its preview at once.
            prefill = LabelMoveForm({"target": target, "evaluation": request.GET.get("evaluation") or ""}, preview=True)
            if prefill.is_valid():
                preview, error = _label_preview_from_form(prefill, owner_kind, owner, label_name)
                if error is not None:
                    form = prefill
    current = None if label is None else (label.prompt_version if owner_kind == "prompt" else label.checkpoint)
    events = paginate(request, selectors.label_events(label=label)) if label is not None else None
    selected = form["target"].value()
    return render(request, "versions/label_detail.html", {
        **access.context(), "owner_kind": owner_kind, "owner": owner, "label_name": label_name, "label": label,
        "current": current, "page": events, "form": form, "preview": preview,
        "selected_target": "" if selected in (None, "") else str(selected),
        "choices": selectors.label_move_choices(owner_kind=owner_kind, owner=owner) if access.can_edit else [],
        "protected": access.project.label_is_protected(label_name),
        "protected_role": Role(access.project.protected_label_role).label,
        "gated": access.project.require_evaluation_for_promotion and label_name in access.project.protected_label_names(),
        "gate_settings": project_gate_settings(access.project), "gate_failures": gate_failures,
    }, status=status)


def _previewed_another(form):
    """The form carries a preview of another target than the one now picked: preview that one."""
    previewed = form.cleaned_data.get("previewed")
    return previewed is not None and previewed != form.cleaned_data["target"]


def _cited_evaluation(project, evaluation_id):
    if not evaluation_id:
        return None
    evaluation = evaluations_for_project(project=project).filter(pk=evaluation_id).first()
    if evaluation is None:
        raise NotFound(f"Evaluation {evaluation_id} not found in {project.slug}.", fields={"evaluation": ["Not found."]})
    return evaluation


def _label_preview_from_form(form, owner_kind, owner, label_name):
    """(the move's preview, None), or (None, the error now attached to the form)."""
    data = form.cleaned_data
    try:
        preview = selectors.label_move_preview(project=owner.project, owner_kind=owner_kind, owner=owner, label_name=label_name,
                                               number=data["target"], evaluation=_cited_evaluation(owner.project, data.get("evaluation")))
    except LetheError as exc:
        form_add_service_error(form, exc, default_field="target")
        return None, exc
    return preview, None


def _label_move_from_form(request, form, owner_kind, owner, label_name):
    """Move the label as the form asks; on a service error attach it to the form and return it."""
    from versions import services

    data = form.cleaned_data
    try:
        if owner_kind == "prompt":
            target = {"prompt_version": selectors.prompt_version_get(prompt=owner, number=data["target"])}
        else:
            target = {"checkpoint": selectors.checkpoint_get(model=owner, number=data["target"])}
        evaluation = _cited_evaluation(owner.project, data.get("evaluation"))
        event = services.label_move(name=label_name, actor=request.user, reason=data["reason"], evaluation=evaluation,
                                    acknowledge_less_safe=data["acknowledge_less_safe"], **target)
    except LetheError as exc:
        form_add_service_error(form, exc, default_field="target")
        return exc
    acknowledged = " The move was acknowledged as less safe." if event.impact["less_safe"] else ""
    messages.success(request, f"{label_name} now points at version {data['target']} ({event.action}).{acknowledged}")
    return None
