"""Template helpers shared by every app's pages: ``{% load lethe %}``."""

import json

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

# Deeper than this, a nested value is shown as an indented JSON block instead of another table.
KV_MAX_DEPTH = 3
# Strings longer than this, or with a line break, are shown as a block of their own.
KV_INLINE_CHARS = 120


@register.simple_tag
def kv_table(value, label=""):
    """A JSON-like value (checkpoint metadata, hyperparameters, generation, judge or statistics
    config) as a key-value table: keys sorted, nested objects as nested tables, lists of plain
    values inline, anything else as a JSON code block."""
    if not isinstance(value, dict):
        return _value(value, 0)
    if not value:
        return mark_safe('<p class="muted">(none)</p>')
    return format_html('<div class="table-scroll">{}</div>', _table(value, 0, label))


def _table(mapping, depth, label=""):
    rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', ((key, _value(mapping[key], depth + 1)) for key in sorted(mapping, key=str)))
    if label:
        return format_html('<table class="kv" aria-label="{}"><tbody>{}</tbody></table>', label, rows)
    return format_html('<table class="kv"><tbody>{}</tbody></table>', rows)


def _value(value, depth):
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="muted">{}</span>')
        if depth >= KV_MAX_DEPTH:
            return _code_block(value)
        return _table(value, depth)
    if isinstance(value, (list, tuple)):
        if not value:
            return mark_safe('<span class="muted">[]</span>')
        if all(_is_scalar(item) and len(_scalar_text(item)) <= KV_INLINE_CHARS for item in value):
            return format_html_join(", ", '<code class="kv-item">{}</code>', ((_scalar_text(item),) for item in value))
        return _code_block(value)
    text = _scalar_text(value)
    if isinstance(value, str):
        if "\n" in value or len(value) > KV_INLINE_CHARS:
            return format_html("<pre>{}</pre>", value)
        return text
    return format_html('<code class="kv-scalar">{}</code>', text)


def _is_scalar(value):
    return value is None or isinstance(value, (str, int, float, bool))


def _scalar_text(value):
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _code_block(value):
    return format_html('<pre class="kv-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str))


@register.filter
def rate_percent(rate):
    """A rate ({"value", "successes", "trials"}, as evals.metrics keeps it) as "100.0% (6/6)";
    a bare number as "100.0%"; n/a without a value."""
    if isinstance(rate, dict):
        value = rate.get("value")
        if value is None:
            return "n/a"
        return f"{100 * value:.1f}% ({rate.get('successes')}/{rate.get('trials')})"
    return "n/a" if rate is None else f"{100 * rate:.1f}%"
