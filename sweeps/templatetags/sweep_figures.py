"""Filters the sweep pages format figures with (rates with their interval, ratios, spreads)."""

from django import template

from evals.reporting import interval, pct

register = template.Library()


@register.filter
def rate(value):
    """A rate dict {"value", "ci", ...} as '12.5% [3.1%, 40.2%]'; '—' when absent."""
    if not value or value.get("value") is None:
        return "—"
    return f"{pct(value['value'])} {interval(value.get('ci'))}".strip()


@register.filter
def spread(value):
    """A seed spread {"mean", "ci", "n"} as '12.5% [3.1%, 40.2%] (n=2)'."""
    if not value or value.get("mean") is None:
        return "—"
    return f"{pct(value['mean'])} {interval(value.get('ci'))} (n={value['n']})".replace("  ", " ")


@register.filter
def ratio(value):
    return "—" if value is None else f"{value:.3f}"


@register.filter
def pooled(value):
    """A pooled rate {"value", "successes", "trials"} as '12.5% (1/8)'; '—' when absent."""
    if not value:
        return "—"
    return f"{pct(value['value'])} ({value['successes']}/{value['trials']})"
