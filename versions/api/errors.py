"""One error body everywhere: ``{"error": {"code", "message", "fields"}}``.

``fields`` maps a field name to its messages (validation errors only). Domain errors raised
by services (``versions.errors.LetheError`` subclasses) map to their HTTP status here, so views
never translate them by hand.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from versions.errors import LetheError


def _flatten(detail):
    if isinstance(detail, dict):
        return {key: _flatten_list(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten_list(detail)}


def _flatten_list(value):
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            out.extend(_flatten_list(item) if isinstance(item, (list, tuple)) else [str(item) if not isinstance(item, dict) else item])
        return out
    if isinstance(value, dict):
        return [_flatten(value)]
    return [str(value)]


def error_body(code, message, fields=None):
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_handler(exc, context):
    if isinstance(exc, LetheError):
        return Response(error_body(exc.code, str(exc), exc.fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", [""]))
        message = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else str(first[1][0])
        response.data = error_body("invalid", message, fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response
