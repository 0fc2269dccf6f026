"""Plotly figure of a sweep's Pareto chart: plain comparison data in, figure JSON out. No Django."""
from __future__ import annotations


def pareto_figure(comparison: dict, *, suite_index: int, links: dict | None = None) -> dict:
    """Attack success (x) against failure to help (y) of every configuration on one suite, one
    trace per method, the frontier as a line. ``links``: {configuration id: page URL}, carried
    as each point's customdata so a click opens that configuration's checkpoint."""
    links = links or {}
    frontier = comparison["frontier"][suite_index]
    rows = {row["id"]: row for row in comparison["rows"]}

    def point(row):
        cell = row["suites"][suite_index]
        return cell["asr"]["value"] if cell["asr"] else None, cell["failure_to_help"]["value"] if cell["failure_to_help"] else None

    by_method: dict[str, list[dict]] = {}
    for row in comparison["rows"]:
        x, y = point(row)
        if x is not None and y is not None:
            by_method.setdefault(row["method"], []).append(row)
    data = [
        {
            "type": "scatter", "mode": "markers", "name": method,
            "x": [point(row)[0] for row in members], "y": [point(row)[1] for row in members],
            "text": [f"#{row['position']} {row['method']} seed {row['seed']}" for row in members],
            "customdata": [links.get(row["id"], "") for row in members],
            "marker": {"size": 11},
        }
        for method, members in sorted(by_method.items())
    ]
    data.append({
        "type": "scatter", "mode": "lines+markers", "name": "Pareto frontier",
        "x": [point(rows[key])[0] for key in frontier], "y": [point(rows[key])[1] for key in frontier],
        "line": {"dash": "dot"}, "marker": {"symbol": "diamond-open", "size": 16}, "hoverinfo": "skip",
    })
    suite = comparison["suites"][suite_index]
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Attack success vs failure to help ({suite})"},
            "xaxis": {"title": {"text": "attack success rate (child)"}, "tickformat": ".0%", "rangemode": "tozero"},
            "yaxis": {"title": {"text": "failure to help (child)"}, "tickformat": ".0%", "rangemode": "tozero"},
            "legend": {"orientation": "h"},
            "height": 420,
        },
    }
