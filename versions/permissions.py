"""Who may do what in a project. Roles are ordered: viewer < editor < reviewer < admin."""
from versions.errors import Forbidden, NotFound
from versions.models import Membership, Role


def user_role(*, project, user):
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cache = getattr(user, "_lethe_roles", None)
    if cache is None:
        cache = user._lethe_roles = {}
    if project.pk not in cache:
        role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
        cache[project.pk] = Role(role) if role is not None else None
    return cache[project.pk]


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
