"""Projects, members, tokens and the audit trail; the project-scoped lookup by name the prompt and model reads share."""

from django.db.models import OuterRef, Subquery

from versions import sql
from core.errors import NotFound
from versions.models import ApiToken, AuditEvent, Membership, Project


def projects_for_user(*, user):
    """Projects the user can see, each annotated with ``my_role`` (None for a superuser who is
    not a member)."""
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return qs.annotate(my_role=Subquery(my_role)).order_by("slug")


def memberships_for_project(*, project):
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def tokens_for_user(*, user):
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_get(*, user, token_id):
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound(f"Token {token_id} not found.")
    return token


def project_get(*, slug, member=None):
    """The project named ``slug``; with ``member``, annotated with that user's ``member_role``
    (None for non-members) in the same statement (SQL: every project-scoped request starts here)."""
    project = sql.project_by_slug(slug=slug, member_id=None if member is None else member.pk)
    if project is None:
        raise NotFound(f"Project {slug!r} not found.")
    return project


def _named_in_project(model_class, *, project, name):
    """The project's prompt or model named ``name`` (None if there is none), its ``project`` the
    instance given. SQL for the reason project_get is: nearly every request names one."""
    found = sql.named_in_project(model_class, project_id=project.pk, name=name)
    if found is not None:
        found.project = project
    return found


def audit_events(*, project):
    return AuditEvent.objects.filter(project=project).select_related("actor").order_by("-id")
