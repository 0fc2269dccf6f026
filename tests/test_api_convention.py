"""Every app's REST views follow the one convention (docs/architecture.md, "The API convention")."""

import re

from django.urls import get_resolver
from rest_framework.views import APIView

from core.api.views import ApiView, ProjectApiView

HANDLERS = ("get", "post", "put", "patch", "delete")
NAME = re.compile(r"^[A-Z]\w*(List|Detail|[A-Z][a-z]+)Api$")


def _api_views():
    views = {}
    for pattern in get_resolver().url_patterns:
        _collect(pattern, "", views)
    return views


def _collect(pattern, prefix, views):
    route = prefix + str(pattern.pattern)
    if hasattr(pattern, "url_patterns"):
        for child in pattern.url_patterns:
            _collect(child, route, views)
        return
    view_class = getattr(pattern.callback, "cls", None)
    if route.startswith("api/v1/") and view_class is not None and issubclass(view_class, APIView):
        views[route] = view_class


def test_every_api_view_is_an_api_view_named_by_the_scheme():
    views = _api_views()

    assert len(views) > 50
    assert [route for route, view in views.items() if not issubclass(view, ApiView)] == []
    assert [view.__name__ for view in views.values() if not NAME.match(view.__name__)] == []


def test_project_views_name_a_role_for_exactly_the_methods_they_answer():
    """A role for a method the view does not answer would resolve the project before the 405."""
    project_views = {route: view for route, view in _api_views().items() if "<slug:project_slug>" in route}

    assert [route for route, view in project_views.items() if not issubclass(view, ProjectApiView)] == []
    mismatched = {view.__name__: sorted(view.roles) for view in project_views.values() if set(view.roles) != {name.upper() for name in HANDLERS if hasattr(view, name)}}
    assert mismatched == {}
