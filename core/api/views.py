"""The one convention of every app's REST API.

Every API view subclasses ``ApiView`` (no project: tokens, the project list) or
``ProjectApiView`` (everything under ``/projects/<project_slug>/``), and is named
``<Thing>ListApi`` (a collection), ``<Thing>DetailApi`` (one item) or ``<Thing><Action>Api``
(an action on one item: ``RunCancelApi``, ``SuiteVersionImportApi``). A view is thin: validate
the request's shape, call a selector or a service, serialize. Errors are raised, never built:
``core.api.errors.error_handler`` (the EXCEPTION_HANDLER) renders every one as the one error body.

``ProjectApiView`` resolves the project before the handler runs, with the least role each HTTP
method needs (``roles``): a missing project and one the caller is not a member of both answer
404, a member below the role 403. How a slug and a user become a project and a role is the
registry's to say; it registers that in its ``AppConfig.ready`` (``project_resolver_register``),
so this layer imports no app.
"""

from dataclasses import dataclass
from functools import partial

from rest_framework.views import APIView

from core.api.pagination import NumberedPaginator, StandardPagination

_project_resolver = None


def project_resolver_register(resolver) -> None:
    """``resolver(*, slug, user, role)`` returns ``(project, the caller's role)`` or raises
    (NotFound for a non-member, Forbidden below ``role``)."""
    global _project_resolver
    _project_resolver = resolver


@dataclass(frozen=True)
class ApiPage:
    """One page of a list: ``items`` to turn into rows, ``response(rows)`` the page envelope."""

    paginator: StandardPagination
    items: list

    def response(self, rows):
        return self.paginator.get_paginated_response(rows)


class ApiView(APIView):
    # Set on every view so the schema shows the page envelope and parameters of each list
    # answer (a response declared many=True); detail answers are unaffected.
    pagination_class = StandardPagination

    def page(self, queryset, *, numbered=None) -> ApiPage:
        """The requested page of ``queryset`` (a queryset or a list). ``numbered`` (keyword
        arguments of NumberedPaginator: total, field, newest_first) pages a gap-free numbered
        sequence by index range instead of COUNT(*) and OFFSET."""
        paginator = StandardPagination()
        if numbered is not None:
            paginator.django_paginator_class = partial(NumberedPaginator, **numbered)
        return ApiPage(paginator=paginator, items=list(paginator.paginate_queryset(queryset, self.request, view=self)))

    def paginated(self, queryset, *, serializer_class=None, rows=None, context=None, numbered=None):
        """One page serialized with ``serializer_class``, or turned into response rows by
        ``rows`` (a function of the page's items: a selector building the API's shape from plain
        rows, where a serializer per object would cost more than the query)."""
        page = self.page(queryset, numbered=numbered)
        if rows is not None:
            return page.response(rows(page.items))
        return page.response(serializer_class(page.items, many=True, context=context or {"request": self.request}).data)


class ProjectApiView(ApiView):
    # A view under /projects/<project_slug>/: self.project and self.role (the caller's) are set
    # before the handler runs. roles maps each HTTP method the view answers to the least role it
    # needs, e.g. {"GET": Role.VIEWER, "POST": Role.EDITOR}. (Comments, not a docstring: the
    # schema generator would show a base class's docstring as every operation's description.)
    roles: dict = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication (401) and throttles first
        role = self.roles.get("GET" if request.method == "HEAD" else request.method)
        if role is None:  # OPTIONS, or a method the view does not answer (405)
            return
        self.project, self.role = _project_resolver(slug=kwargs["project_slug"], user=request.user, role=role)
