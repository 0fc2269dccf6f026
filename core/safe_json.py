"""JSON from outside (request bodies, form fields, imported lines, file headers) parsed with a
bound on nesting depth.

Python's parser recurses once per level: 2,000 nested arrays (4 KB) raise RecursionError, which
no caller expects, so the request ended in a 500. ``json_loads`` measures the depth first,
without recursion, and refuses deeper documents with a ``JSONDecodeError`` (which every caller
already turns into a clear message) that points at the first bracket past the limit.
"""

import json
import re
from itertools import accumulate

_STRING = {str: re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S), bytes: re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)}
_TOKEN = {str: re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S), bytes: re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)}
_NOT_BRACKET = {str: re.compile(r"[^\[\]{}]+"), bytes: re.compile(rb"[^\[\]{}]+")}
_OPENERS = {str: "[{", bytes: b"[{"}
_DELTA = {**{c: 1 for c in "[{"}, **{c: -1 for c in "]}"}, **{ord(c): 1 for c in "[{"}, **{ord(c): -1 for c in "]}"}}


class JsonTooDeep(json.JSONDecodeError):
    def __init__(self, doc, pos, max_depth):
        super().__init__(f"JSON nested deeper than {max_depth} levels", doc, pos)


def _kind(text):
    return bytes if isinstance(text, (bytes, bytearray)) else str


def json_depth_check(text, max_depth=None):
    """Raise JsonTooDeep if ``text`` (str or bytes) nests arrays and objects deeper than
    ``max_depth`` (LETHE_MAX_JSON_DEPTH). Brackets inside strings do not count. Linear time; the
    loops run in C except the last, which stops at the first bracket too deep."""
    max_depth = _max_depth(max_depth)
    kind = _kind(text)
    openers = _OPENERS[kind]
    if sum(text.count(opener) for opener in (openers[:1], openers[1:])) <= max_depth:
        return  # not enough brackets to be too deep
    brackets = _NOT_BRACKET[kind].sub(kind(), _STRING[kind].sub(kind(), text))
    if max(accumulate(map(_DELTA.__getitem__, brackets)), default=0) <= max_depth:
        return
    depth = 0
    for match in _TOKEN[kind].finditer(text):
        token = match.group()
        if len(token) == 1:
            depth += _DELTA[token[0]]
            if depth > max_depth:
                raise JsonTooDeep(text.decode("utf-8", errors="replace") if kind is bytes else text, match.start(), max_depth)


def _max_depth(max_depth):
    if max_depth is not None:
        return max_depth
    from django.conf import settings

    return settings.LETHE_MAX_JSON_DEPTH


def json_loads(text, *, max_depth=None, **kwargs):
    """``json.loads`` that refuses documents nested deeper than ``max_depth``."""
    json_depth_check(text, max_depth)
    return json.loads(text, **kwargs)


def json_unstorable_text(value):
    """The path (``a.0.b``) of the first string in a parsed document that no database can store
    as text: a NUL character (PostgreSQL refuses it) or a lone surrogate (not Unicode, so not
    UTF-8). None when every key and value is fine. Iterative: the document may be deep."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return path or "(the document)"
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if _unstorable(key):
                    return child_path
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{index}" if path else str(index), child) for index, child in enumerate(item))
    return None


def _unstorable(text):
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
