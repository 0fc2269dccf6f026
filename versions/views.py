"""Server-rendered pages of the registry alone: projects, prompts, datasets and labels. Pages
that compose the registry with runs, evaluations or unlearning (the dashboard, a model with its
lineage graph, a checkpoint, safety over time) live in ``pages``. Views are thin: check access,
call selectors or a service, render."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from versions import diffing, selectors
from core.errors import Forbidden, LessSafeTarget, LetheError, NotFound
from versions.forms import DiffForm, LabelMoveForm, SignInForm, form_add_service_error
from versions.models import Project, Role
from versions.permissions import project_require
from versions.promotion import cited_evaluation, project_gate_settings

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


# ---------------------------------------------------------------- prompts


@login_required
def prompt_history(request, slug, prompt_name):
    access = project_access(request, slug)
    prompt = get_or_404(selectors.prompt_get, project=access.project, name=prompt_name)
    page = paginate_history(request, selectors.prompt_versions(prompt=prompt), prompt.version_count)
    page.object_list = selectors.prompt_version_rows_complete(page.object_list)
    diff_form = DiffForm(initial={"old": max(prompt.version_count - 1, 1), "new": prompt.version_count})
    return render(
        request,
        "versions/prompt_history.html",
        {
            **access.context(),
            "prompt": prompt,
            "page": page,
            "labels": list(prompt.labels.select_related("prompt_version").order_by("name")),
            "diff_form": diff_form,
        },
    )


@login_required
def prompt_version_detail(request, slug, prompt_name, number):
    access = project_access(request, slug)
    prompt = get_or_404(selectors.prompt_get, project=access.project, name=prompt_name)
    version = get_or_404(selectors.prompt_version_get, prompt=prompt, number=number)
    return render(
        request,
        "versions/prompt_version.html",
        {
            **access.context(),
            "prompt": prompt,
            "version": version,
            "labels": list(version.labels.order_by("name")),
            "tags": list(version.tags.order_by("name")),
        },
    )


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
        context.update(
            {
                "rows": diffing.unified_rows(rows) if view == "unified" else rows,
                "split_url": f"?old={diff['old']}&new={diff['new']}",
                "unified_url": f"?old={diff['old']}&new={diff['new']}&view=unified",
            }
        )
    return render(request, "versions/prompt_diff.html", context, status=200 if diff is not None else 400)


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
        audit_hazard_read(request, access, object_type="dataset_version", object_id=version.pk, data={"dataset": dataset.name, "version": version.number, "page": page.number})
    return render(
        request,
        "versions/dataset_version.html",
        {
            **access.context(),
            "dataset": dataset,
            "version": version,
            "page": page,
            "reveal": reveal,
            "has_category": any("category" in row for row in page.object_list),
        },
    )


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
    return render(
        request,
        "versions/label_detail.html",
        {
            **access.context(),
            "owner_kind": owner_kind,
            "owner": owner,
            "label_name": label_name,
            "label": label,
            "current": current,
            "page": events,
            "form": form,
            "preview": preview,
            "selected_target": "" if selected in (None, "") else str(selected),
            "choices": selectors.label_move_choices(owner_kind=owner_kind, owner=owner) if access.can_edit else [],
            "protected": access.project.label_is_protected(label_name),
            "protected_role": Role(access.project.protected_label_role).label,
            "gated": access.project.require_evaluation_for_promotion and label_name in access.project.protected_label_names(),
            "gate_settings": project_gate_settings(access.project),
            "gate_failures": gate_failures,
        },
        status=status,
    )


def _previewed_another(form):
    """The form carries a preview of another target than the one now picked: preview that one."""
    previewed = form.cleaned_data.get("previewed")
    return previewed is not None and previewed != form.cleaned_data["target"]


def _cited_evaluation(project, evaluation_id):
    if not evaluation_id:
        return None
    evaluation = cited_evaluation(project=project, evaluation_id=evaluation_id, with_arms=True)
    if evaluation is None:
        raise NotFound(f"Evaluation {evaluation_id} not found in {project.slug}.", fields={"evaluation": ["Not found."]})
    return evaluation


def _label_preview_from_form(form, owner_kind, owner, label_name):
    """(the move's preview, None), or (None, the error now attached to the form)."""
    data = form.cleaned_data
    try:
        preview = selectors.label_move_preview(
            project=owner.project,
            owner_kind=owner_kind,
            owner=owner,
            label_name=label_name,
            number=data["target"],
            evaluation=_cited_evaluation(owner.project, data.get("evaluation")),
        )
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
        event = services.label_move(
            name=label_name, actor=request.user, reason=data["reason"], evaluation=evaluation, acknowledge_less_safe=data["acknowledge_less_safe"], **target
        )
    except LetheError as exc:
        form_add_service_error(form, exc, default_field="target")
        return exc
    acknowledged = " The move was acknowledged as less safe." if event.impact["less_safe"] else ""
    messages.success(request, f"{label_name} now points at version {data['target']} ({event.action}).{acknowledged}")
    return None
