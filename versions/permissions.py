"""Who may do what in a project. Roles are ordered: viewer < editor < reviewer < admin."""

from core.errors import Forbidden, NotFound
from versions.models import Membership, Role


def _role_cache(user):
    cache = getattr(user, "_lethe_roles", None)
    if cache is None:
        cache = user._lethe_roles = {}
    return cache


def user_role(*, project, user):
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cache = _role_cache(user)
    if project.pk not in cache:
        role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
        cache[project.pk] = Role(role) if role is not None else None
    return cache[project.pk]


def project_require(*, slug, user, role):
    """The project named ``slug`` and the user's role in it, if at least ``role``; raises as
    role_require. The project and the membership are read in one statement, and the role is
    cached on the user as user_role would."""
    from versions.selectors import project_get

    forget_cached_roles(user)  # a request starts from the database's current view
    member = user if user is not None and user.is_authenticated and not user.is_superuser else None
    project = project_get(slug=slug, member=member)
    if member is not None:
        _role_cache(user)[project.pk] = Role(project.member_role) if project.member_role is not None else None
    return project, role_require(project=project, user=user, role=role)


def role_require(*, project, user, role):
    """Return the user's role if it is at least ``role``.

    Non-members get NotFound rather than Forbidden, so a project's existence does not leak.
    """
    current = user_role(project=project, user=user)
    if current is None:
        raise NotFound(f"Project {project.slug!r} not found.")
    if current < role:
        raise Forbidden(f"This needs the {Role(role).label} role in project {project.slug!r}; you are {current.label}.")
    return current


def forget_cached_roles(user):
    if hasattr(user, "_lethe_roles"):
        del user._lethe_roles
