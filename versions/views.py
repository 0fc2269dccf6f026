"""Server-rendered pages of the registry: projects, prompts, models, checkpoints, labels and
safety over time. Views are thin: check access, call selectors or a service, render."""
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from evals.selectors import evaluations_for_project
from versions import charts, diffing, selectors
from versions.errors import Forbidden, LetheError, NotFound
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
    from versions.api.pagination import NumberedPaginator

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
    from jobs.models import RunStatus
    from jobs.selectors import run_list

    access = project_access(request, slug)
    project = access.project
    context = {
        **access.context(),
        "production_labels": list(selectors.labels_named(project=project, name="production")),
        "label_events": list(selectors.label_events_for_project(project=project)[:10]),
        "active_runs": list(run_list(project=project).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])[:20]),
        "evaluations": list(evaluations_for_project(project=project)[:10]),
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


def _lineage_figure(model, checkpoints, edges, slug):
    nodes = [
        charts.LineageNode(id=c.pk, label=f"#{c.number}", kind=c.kind,
                           hover=f"{model.name} #{c.number} ({c.kind}) {c.message[:60]}",
                           url=reverse("versions:checkpoint", args=[slug, model.name, c.number]))
        for c in checkpoints
    ]
    known = {c.pk for c in checkpoints}
    for edge in edges:
        if edge.parent_id not in known:
            known.add(edge.parent_id)
            parent = edge.parent
            nodes.append(charts.LineageNode(id=parent.pk, label=f"{parent.model.name} #{parent.number}", kind="external",
                                            hover=f"{parent.model.name} #{parent.number} ({parent.kind})",
                                            url=reverse("versions:checkpoint", args=[slug, parent.model.name, parent.number])))
    links = [charts.LineageLink(parent=e.parent_id, child=e.child_id, relation=e.relation, method=e.method) for e in edges]
    return charts.lineage_figure(nodes, links, title=f"Lineage of {model.name}"), nodes, links


@login_required
def model_detail(request, slug, model_name):
    access = project_access(request, slug)
    model = get_or_404(selectors.model_get, project=access.project, name=model_name)
    page = paginate_history(request, selectors.checkpoints_for_model(model=model), model.checkpoint_count)
    page.object_list = selectors.checkpoint_rows_complete(page.object_list)
    checkpoints, edges = selectors.lineage_graph(model=model)
    figure, _, _ = _lineage_figure(model, checkpoints, edges, slug)
    return render(request, "versions/model_detail.html", {
        **access.context(), "model": model, "page": page, "lineage_figure": figure,
        "labels": list(model.labels.select_related("checkpoint").order_by("name")),
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


def safety_points(*, arms, lineage_order):
    """One point per evaluated arm (selectors.safety_arms_for_model)."""
    points = []
    for arm in arms:
        asr, asr_ci = _rate(arm["overall"], "asr")
        over_refusal, over_refusal_ci = _rate(arm["overall"], "over_refusal_rate")
        points.append(charts.SafetyPoint(
            checkpoint=f"#{arm['number']}", lineage_order=lineage_order[arm["checkpoint_id"]], at=arm["at"], suite=arm["suite"],
            asr=asr, asr_ci=asr_ci, over_refusal=over_refusal, over_refusal_ci=over_refusal_ci,
            perplexity=arm["utility"].get("perplexity"),
        ))
    return points


def modality_asr_points(*, arms, lineage_order):
    """ASR per modality for each evaluated arm (vision-language evaluations contribute a text
    and an image point per checkpoint)."""
    points = []
    for arm in arms:
        for modality, rates in arm["by_modality"].items():
            asr = rates.get("asr") or {}
            points.append({
                "checkpoint": f"#{arm['number']}", "lineage_order": lineage_order[arm["checkpoint_id"]], "at": arm["at"],
                "suite": arm["suite"], "modality": modality, "asr": asr.get("value"), "ci": asr.get("ci"),
            })
    return points


@login_required
def model_safety(request, slug, model_name):
    access = project_access(request, slug)
    model = get_or_404(selectors.model_get, project=access.project, name=model_name)
    arms = selectors.safety_arms_for_model(model=model)
    # Along the lineage: the evaluated checkpoints by generation, then number. Only those are
    # read, not the model's whole graph (thousands of checkpoints on a long chain).
    evaluated = {arm["checkpoint_id"]: (arm["generation"], arm["number"]) for arm in arms}
    lineage_order = {pk: index for index, pk in enumerate(sorted(evaluated, key=evaluated.get))}
    points = safety_points(arms=arms, lineage_order=lineage_order)
    marks = [
        charts.LabelMark(at=created_at.isoformat(), text=f"{label} → #{number} ({action})")
        for created_at, label, number, action in selectors.label_marks_for_model(model=model, limit=200)
    ]
    figures = [
        (f"safety-{metric}-{over}", charts.safety_figure(points, metric=metric, over=over, marks=marks))
        for metric in ("asr", "over_refusal", "perplexity")
        for over in ("lineage", "time")
    ]
    modality_points = modality_asr_points(arms=arms, lineage_order=lineage_order)
    if any(point["modality"] == "image+text" for point in modality_points):
        from evals.charts import modality_asr_figure

        figures.insert(2, ("safety-asr-by-modality", modality_asr_figure(modality_points)))
    return render(request, "versions/model_safety.html", {**access.context(), "model": model, "figures": figures, "point_count": len(points)})


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
    """A label's history, and the form that moves it (promote or roll back)."""
    access = project_access(request, slug, Role.EDITOR if request.method == "POST" else Role.VIEWER)
    owner = _label_owner(access.project, owner_kind, owner_name)
    try:
        label = selectors.label_get(project=access.project, owner_kind=owner_kind, owner_name=owner.name, name=label_name)
    except NotFound:
        label = None
    status = 200
    gate_failures = []
    if request.method == "POST":
        form = LabelMoveForm(request.POST)
        if not form.is_valid():
            status = 400
        else:
            error = _label_move_from_form(request, form, owner_kind, owner, label_name)
            if error is None:
                return redirect(request.path)
            # The message sits next to the field; the status says what kind of refusal it was.
            status = error.status_code
            refused = (error.fields or {}).get("evaluation")
            if isinstance(refused, list) and len(refused) > 1:
                gate_failures = refused
    else:
        # ?target=<number>&evaluation=<id>: a "Promote" link (a sweep row) fills in the move and its evidence.
        form = LabelMoveForm(initial={"target": request.GET.get("target") or request.GET.get("to"), "evaluation": request.GET.get("evaluation")})
    current = None if label is None else (label.prompt_version if owner_kind == "prompt" else label.checkpoint)
    events = paginate(request, selectors.label_events(label=label)) if label is not None else None
    return render(request, "versions/label_detail.html", {
        **access.context(), "owner_kind": owner_kind, "owner": owner, "label_name": label_name, "label": label,
        "current": current, "page": events, "form": form,
        "protected": access.project.label_is_protected(label_name),
        "protected_role": Role(access.project.protected_label_role).label,
        "gated": access.project.require_evaluation_for_promotion and label_name in access.project.protected_label_names(),
        "gate_settings": project_gate_settings(access.project), "gate_failures": gate_failures,
    }, status=status)


def _label_move_from_form(request, form, owner_kind, owner, label_name):
    """Move the label as the form asks; on a service error attach it to the form and return it."""
    from versions import services

    data = form.cleaned_data
    try:
        if owner_kind == "prompt":
            target = {"prompt_version": selectors.prompt_version_get(prompt=owner, number=data["target"])}
        else:
            target = {"checkpoint": selectors.checkpoint_get(model=owner, number=data["target"])}
        evaluation = None
        if data.get("evaluation"):
            evaluation = evaluations_for_project(project=owner.project).filter(pk=data["evaluation"]).first()
            if evaluation is None:
                raise NotFound(f"Evaluation {data['evaluation']} not found in {owner.project.slug}.", fields={"evaluation": ["Not found."]})
        event = services.label_move(name=label_name, actor=request.user, reason=data["reason"], evaluation=evaluation, **target)
    except LetheError as exc:
        form_add_service_error(form, exc, default_field="target")
        return exc
    messages.success(request, f"{label_name} now points at version {data['target']} ({event.action}).")
    return None
