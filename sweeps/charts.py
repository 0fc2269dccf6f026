"""Plotly figures of a sweep's Pareto charts: plain comparison data in, figure JSON out. No Django."""

from __future__ import annotations

# The two charts: attack success (x) against failure to help, and against utility loss (the
# held-out perplexity ratio child / parent); each with its own frontier in the comparison.
AXES = {
    "failure_to_help": {"frontier": "frontier", "title": "failure to help", "label": "failure to help (child)", "tickformat": ".0%"},
    "utility": {"frontier": "utility_frontier", "title": "utility loss", "label": "perplexity ratio (child / parent)", "tickformat": ".3f"},
}


def _y(cell, axis):
    if axis == "utility":
        return cell["perplexity_ratio"]
    return cell["failure_to_help"]["value"] if cell["failure_to_help"] else None


def pareto_figure(comparison: dict, *, suite_index: int, links: dict | None = None, axis: str = "failure_to_help") -> dict:
    """Attack success (x) against failure to help or utility loss (y, ``axis``) of every
    configuration on one suite, one trace per method, the frontier as a line. ``links``:
    {configuration id: page URL}, carried as each point's customdata so a click opens that
    configuration's checkpoint."""
    links = links or {}
    spec = AXES[axis]
    frontier = (comparison.get(spec["frontier"]) or [[] for _ in comparison["suites"]])[suite_index]
    rows = {row["id"]: row for row in comparison["rows"]}

    def point(row):
        cell = row["suites"][suite_index]
        return cell["asr"]["value"] if cell["asr"] else None, _y(cell, axis)

    by_method: dict[str, list[dict]] = {}
    for row in comparison["rows"]:
        x, y = point(row)
        if x is not None and y is not None:
            by_method.setdefault(row["method"], []).append(row)
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": method,
            "x": [point(row)[0] for row in members],
            "y": [point(row)[1] for row in members],
            "text": [f"#{row['position']} {row['method']} seed {row['seed']}" + (" (on the frontier)" if row["id"] in frontier else "") for row in members],
            "customdata": [links.get(row["id"], "") for row in members],
            "marker": {"size": 11},
        }
        for method, members in sorted(by_method.items())
    ]
    data.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Pareto frontier",
            "x": [point(rows[key])[0] for key in frontier],
            "y": [point(rows[key])[1] for key in frontier],
            "line": {"dash": "dot"},
            "marker": {"symbol": "diamond-open", "size": 16},
            "hoverinfo": "skip",
        }
    )
    suite = comparison["suites"][suite_index]
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Attack success vs {spec['title']} ({suite})"},
            "xaxis": {"title": {"text": "attack success rate (child)"}, "tickformat": ".0%", "rangemode": "tozero"},
            "yaxis": {"title": {"text": spec["label"]}, "tickformat": spec["tickformat"], "rangemode": "tozero"},
            "legend": {"orientation": "h"},
            "height": 420,
        },
    }
