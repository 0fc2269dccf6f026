"""Middleware shared by every page and the API: the Content-Security-Policy header, and form
bodies refused unless they are UTF-8."""

from urllib.parse import unquote_to_bytes

from django.conf import settings

from core.api.errors import request_refused

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class ContentSecurityPolicyMiddleware:
    """Adds ``LETHE_CONTENT_SECURITY_POLICY`` to every response (pages, the API, static files and
    error pages) that does not set its own. Django 5.2 has no CSP support of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.LETHE_CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


def _first_invalid_utf8(body):
    """The name of the first field of a url-encoded body whose name or value is not UTF-8 once
    percent-decoded, or None. Django decodes such bytes to U+FFFD, so a stored text would no
    longer be what the client sent."""
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name.replace(b"+", b" "))
        try:
            name_text = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return name_bytes.decode("utf-8", errors="replace")
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return name_text
    return None


class StrictFormEncodingMiddleware:
    """Refuses (400) a url-encoded body, on a page or the API, with a field that is not UTF-8.

    Reading ``request.body`` applies DATA_UPLOAD_MAX_MEMORY_SIZE first, so an oversize form is
    refused (413) before it is decoded. Multipart bodies are checked field by field by the API's
    parser (``core.api.parsers``), so uploads still stream to disk.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("POST", "PUT", "PATCH") and request.content_type == FORM_CONTENT_TYPE:
            field = _first_invalid_utf8(request.body)
            if field is not None:
                return request_refused(request, status=400, code="invalid", message=f"Form field {field!r} is not valid UTF-8; send text as UTF-8.")
        return self.get_response(request)
