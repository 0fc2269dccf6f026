"""Project scoping for API views. Every project-scoped view starts with ``project_for_request``:
a missing project and a project the user is not a member of both answer 404 (existence does not
leak); a member whose role is too low gets 403. Anonymous requests never get here: the default
permission (IsAuthenticated) answers 401 first."""
from versions.permissions import project_require


def project_for_request(request, project_slug, role):
    project, _ = project_require(slug=project_slug, user=request.user, role=role)
    return project
