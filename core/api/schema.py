"""OpenAPI helpers shared by every API view: the one error body as a component, and
``api_schema`` which attaches it to the error statuses an operation can answer."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable code, e.g. invalid, not_found, permission_denied, conflict.")
    message = serializers.CharField(help_text="What is wrong and what to do, for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per-field messages (validation errors only); empty otherwise.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    400: "Invalid input.",
    401: "Not authenticated: send 'Authorization: Bearer <token>' or a session cookie.",
    403: "Your role in the project does not allow this.",
    404: "Not found (or not a member of the project).",
    409: "Conflicts with the current state.",
    413: "Body or upload over a size limit (code too_large).",
    415: "Unsupported content type.",
    429: "Too many requests: too many failed authentication attempts from this address, or tokens created too fast (code throttled); retry after the Retry-After header's seconds.",
    503: "The database is unavailable; retry later (code database_unavailable).",
}

READ_ERRORS = (401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409)


def error_responses(*codes):
    return {code: OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


def api_schema(*, operation_id, tags, responses, request=None, errors=READ_ERRORS, parameters=None, description=None):
    """``extend_schema`` with the error component on ``errors``. ``responses`` is a serializer
    (status 200) or a {status: response} mapping."""
    if not isinstance(responses, dict):
        responses = {200: responses}
    return extend_schema(
        operation_id=operation_id,
        tags=tags,
        request=request,
        responses={**responses, **error_responses(*errors)},
        parameters=parameters,
        description=description,
    )


def api_schema_by_view(attribute, schemas):
    """A handler's schema when one view class answers several routes, told apart by a keyword
    of ``as_view`` (``attribute``, e.g. ``as_view(owner_kind="prompt")``): ``schemas`` maps each
    value of it to that route's ``api_schema(...)``, so each route keeps its own operation (id,
    request, ...) while the handler is written once."""
    by_value = {value: _schema_class(decorator) for value, decorator in schemas.items()}

    class ByViewSchema(AutoSchema):
        # The generator asks the view's schema for each operation; this one hands the question
        # to the schema of the route's value.
        def get_operation(self, path, path_regex, path_prefix, method, registry):
            schema = by_value[getattr(self.view, attribute)]()
            schema.view = self.view
            return schema.get_operation(path, path_regex, path_prefix, method, registry)

    def decorate(handler):
        handler.kwargs = {"schema": ByViewSchema}  # where extend_schema leaves it, and the generator finds it
        return handler

    return decorate


def _schema_class(decorator):
    """The schema class an ``extend_schema`` decorator attaches to a handler, taken off a stand-in."""

    def handler():
        pass

    return decorator(handler).kwargs["schema"]


def _error_response(code):
    return {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation documents the errors it can answer,
    whichever app declared it and however (``api_schema`` or a bare ``extend_schema``).

    401, 429 (an address locked after failed authentications) and 503 (database unavailable)
    can come from any operation; 403 and 404 from anything
    inside a project or naming an object; 400 and 404 (a page past the end) from anything with a
    query; 400, 413 and 415 from anything with a body; 409 from anything that writes.
    Statuses an operation already documents are left as they are.
    """
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            parameters = operation.get("parameters", [])
            codes = {401, 429, 503}
            if "{project_slug}" in path or any(p.get("in") == "path" for p in parameters):
                codes |= {403, 404}
            if any(p.get("in") == "query" for p in parameters):
                codes |= {400, 404}
            if "requestBody" in operation:
                codes |= {400, 413, 415}
            if method != "get":
                codes.add(409)
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(str(code), _error_response(code))
    return result
