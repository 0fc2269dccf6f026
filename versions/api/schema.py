"""OpenAPI helpers shared by every API view: the one error body as a component, and
``api_schema`` which attaches it to the error statuses an operation can answer."""
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
    413: "Upload over a size limit.",
    415: "Unsupported content type.",
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
