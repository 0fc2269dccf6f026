"""One error body everywhere: ``{"error": {"code", "message", "fields"}}``.

``fields`` maps a field name to its messages (validation errors only). Domain errors raised
by services (``core.errors.LetheError`` subclasses) map to their HTTP status here, so views
never translate them by hand.
"""

import errno
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import InsufficientStorage, LetheError, TooLarge

logger = logging.getLogger(__name__)


def _flatten(detail, prefix=""):
    """DRF's nested error detail as ``{"field": [message, ...]}``, every value a list of strings:
    nested fields become dotted paths (``cases.0.prompt``), as the schema documents."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, (list, tuple)):
        messages, nested = [], {}
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list, tuple)):
                # A list of messages nests as lists; a list of objects (one per item) as dicts.
                for key, value in _flatten(item, f"{prefix}.{index}" if isinstance(item, dict) else prefix).items():
                    nested.setdefault(key, []).extend(value)
            else:
                messages.append(str(item))
        out = {prefix or "non_field_errors": messages} if messages else {}
        for key, value in nested.items():
            out.setdefault(key, []).extend(value)
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(code, message, fields=None):
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge.request_body()
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The disk filled up while an upload was written (the partial file is already removed
        # by the upload handler, and no row was written): the client's request was fine.
        logger.error("no space left during %s", context["request"].path, exc_info=exc)
        exc = InsufficientStorage.disk_full()
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files, a malformed multipart boundary: Django would answer an HTML 400.
        return Response(error_body("invalid", f"Malformed request: {exc}"), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, LetheError):
        body = error_body(exc.code, str(exc), exc.fields)
        body["error"].update(exc.extra)
        return Response(body, status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The connection dropped or the server is gone: the service's transaction was rolled
        # back with it, so nothing half-written remains and the client may simply retry.
        logger.error("database unavailable during %s", context["request"].path, exc_info=exc)
        return Response(
            error_body("database_unavailable", "The database is unavailable; nothing was changed. Retry in a moment."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
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


def server_error(request):
    """``handler500``: under /api/ an unexpected error still answers the one error body (the
    traceback goes to the log, never to the client)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", "Something went wrong on the server; nothing is known to have changed. Retry, and tell the operators if it persists."), status=500
        )
    return defaults.server_error(request)


def not_found(request, exception=None):
    """``handler404``: under /api/ a URL that matches no route answers the JSON error body."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
    return defaults.page_not_found(request, exception)


def request_refused(request, *, status, code, message):
    """A request refused before any view ran: the JSON error body under /api/, a page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status)
    return render(request, "request_refused.html", {"status": status, "message": message}, status=status)


def bad_request(request, exception=None):
    """``handler400``: what Django refuses itself (``SuspiciousOperation``) outside a DRF view.
    A body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 ``too_large``, on the API and on pages."""
    if isinstance(exception, RequestDataTooBig):
        return request_refused(request, status=413, code="too_large", message=str(TooLarge.request_body()))
    return request_refused(request, status=400, code="invalid", message="Malformed request.")
