"""Project scoping for API views. Every project-scoped view starts with ``project_for_request``:
a missing project and a project the user is not a member of both answer 404 (existence does not
leak); a member whose role is too low gets 403. Anonymous requests never get here: the default
permission (IsAuthenticated) answers 401 first."""
from versions.permissions import forget_cached_roles, role_require
from versions.selectors import project_get


def project_for_request(request, project_slug, role):
    # Roles are cached on the user object; a request starts from the database's current view.
    forget_cached_roles(request.user)
    project = project_get(slug=project_slug)
    role_require(project=project, user=request.user, role=role)
    return project
