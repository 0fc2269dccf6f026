"""Request body parsers of the API. What DRF's own parsers let through, these refuse with the
one error body: JSON nested deeper than LETHE_MAX_JSON_DEPTH (400; Python's parser would
recurse until RecursionError), bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (413 ``too_large``; DRF
reads a JSON body whatever its size), text that is not UTF-8 or that no database stores (a NUL,
a lone surrogate), and multipart fields that are not UTF-8 (Django would store them with
U+FFFD replacement characters)."""

import codecs

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.errors import TooLarge
from core.safe_json import json_loads, json_unstorable_text

STRICT_UTF8 = "lethe_strict_utf_8"


def _strict_utf8_decode(data, errors="strict"):
    # Django's multipart parser decodes every field name, value and file name with
    # errors="replace"; this codec ignores that argument, so bad bytes raise instead.
    return codecs.utf_8_decode(data, "strict", True)


def _find_strict_utf8(name):
    if name.replace("-", "_") == STRICT_UTF8:
        return codecs.CodecInfo(name=STRICT_UTF8, encode=codecs.utf_8_encode, decode=_strict_utf8_decode)
    return None


codecs.register(_find_strict_utf8)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise TooLarge.request_body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"The request body is not valid UTF-8 (byte {exc.start}); send JSON as UTF-8.") from None
        try:
            data = json_loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        path = json_unstorable_text(data)
        if path is not None:
            raise ParseError(f"Text at {path} holds a NUL character or a lone surrogate (\\u0000, \\ud800-\\udfff), which cannot be stored; send valid Unicode text.")
        return data


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON; send numbers as finite values")


def multipart_parse(*, meta, stream, upload_handlers, on_error=None):
    """(data, files) of a multipart body, with every field name, value and file name strictly
    UTF-8; a ParseError naming what is wrong otherwise."""
    try:
        return DjangoMultiPartParser(meta, stream, upload_handlers, STRICT_UTF8).parse()
    except UnicodeDecodeError:
        if on_error is not None:
            on_error()
        raise ParseError("A multipart field name, value or file name is not valid UTF-8; send text as UTF-8.") from None
    except MultiPartParserError as exc:
        if on_error is not None:
            on_error()
        raise ParseError(f"Multipart form parse error - {exc}") from None


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        data, files = multipart_parse(meta=meta, stream=stream, upload_handlers=request.upload_handlers)
        return parsers.DataAndFiles(data, files)
