"""Plotly figure builders for registry pages: plain data in, figure JSON (a dict) out. No Django.

Figures are plain dicts ({"data": [...], "layout": {...}}) rather than plotly.graph_objects:
the browser's plotly.js draws them, and building dicts costs nothing per request.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

KIND_COLOURS = {"reference": "#6b7280", "full": "#1f5fbf", "adapter": "#1e7a3c", "external": "#b0b7c3"}
METRIC_TITLES = {"asr": "Attack success rate", "over_refusal": "Over-refusal rate", "perplexity": "Held-out perplexity (utility)"}


@dataclass(frozen=True)
class LineageNode:
    id: int
    label: str  # e.g. "#3"
    kind: str  # reference | adapter | full | external (a parent in another model)
    hover: str = ""
    url: str = ""


@dataclass(frozen=True)
class LineageLink:
    parent: int
    child: int
    relation: str
    method: str = ""


def lineage_depths(nodes: list[LineageNode], links: list[LineageLink]) -> dict[int, int]:
    """Depth of each node: 0 for roots, else 1 + the deepest parent (longest path), so every
    edge points to the right. Cycles cannot occur (services refuse them); a malformed input
    still terminates because each node's depth is fixed once."""
    parents = defaultdict(list)
    ids = {node.id for node in nodes}
    for link in links:
        if link.parent in ids and link.child in ids:
            parents[link.child].append(link.parent)
    depths: dict[int, int] = {}

    def depth_of(node_id, visiting=()):
        if node_id in depths:
            return depths[node_id]
        if node_id in visiting:
            return 0
        result = 1 + max((depth_of(p, (*visiting, node_id)) for p in parents[node_id]), default=-1)
        depths[node_id] = result
        return result

    for node in nodes:
        depth_of(node.id)
    return depths


def lineage_figure(nodes: list[LineageNode], links: list[LineageLink], *, title: str = "Lineage") -> dict:
    """Checkpoints as markers layered left to right by depth; edges as lines, with the relation
    and method at each edge's midpoint."""
    depths = lineage_depths(nodes, links)
    layers: dict[int, list[LineageNode]] = defaultdict(list)
    for node in nodes:
        layers[depths[node.id]].append(node)
    position = {}
    for depth, members in layers.items():
        for index, node in enumerate(members):
            position[node.id] = (depth, index - (len(members) - 1) / 2)

    edge_x, edge_y, mid_x, mid_y, mid_text = [], [], [], [], []
    for link in links:
        if link.parent not in position or link.child not in position:
            continue
        (x0, y0), (x1, y1) = position[link.parent], position[link.child]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(link.relation + (f" ({link.method})" if link.method else ""))

    data = [
        {"type": "scatter", "mode": "lines", "x": edge_x, "y": edge_y, "name": "edges",
         "line": {"color": "#9aa3b0", "width": 2}, "hoverinfo": "skip", "showlegend": False},
        {"type": "scatter", "mode": "markers", "x": mid_x, "y": mid_y, "name": "relations", "text": mid_text,
         "hoverinfo": "text", "marker": {"size": 8, "symbol": "diamond", "color": "#9aa3b0"}, "showlegend": False},
    ]
    for kind in ("reference", "full", "adapter", "external"):
        members = [node for node in nodes if node.kind == kind]
        if not members:
            continue
        data.append({
            "type": "scatter", "mode": "markers+text", "name": kind,
            "x": [position[n.id][0] for n in members], "y": [position[n.id][1] for n in members],
            "text": [n.label for n in members], "textposition": "top center",
            "hovertext": [n.hover or n.label for n in members], "hoverinfo": "text",
            "customdata": [n.url for n in members],
            "marker": {"size": 16, "color": KIND_COLOURS[kind], "line": {"width": 1, "color": "#ffffff"}},
        })
    max_depth = max(depths.values(), default=0)
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "depth (generations from the root)"}, "dtick": 1, "range": [-0.5, max_depth + 0.5], "zeroline": False},
            "yaxis": {"visible": False},
            "height": 320 + 10 * max((len(layer) for layer in layers.values()), default=0),
            "legend": {"orientation": "h"},
        },
    }


def weight_change_figure(weight_change: dict[str, float], *, title: str = "Weight change by module") -> dict:
    """Horizontal bars of the norm of the change per trained module, in module order."""
    names = sorted(weight_change)
    return {
        "data": [{"type": "bar", "orientation": "h", "x": [float(weight_change[name]) for name in names], "y": names,
                  "name": "norm of change", "marker": {"color": "#1f5fbf"}}],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "norm of change"}},
            "yaxis": {"automargin": True, "autorange": "reversed"},
            "height": max(300, 60 + 18 * len(names)),
        },
    }


@dataclass(frozen=True)
class SafetyPoint:
    """One checkpoint's metrics in one evaluation on one suite version."""

    checkpoint: str  # label such as "#3"
    lineage_order: int  # position along the lineage (depth, then number)
    at: str  # ISO timestamp of the evaluation
    suite: str  # e.g. "starter v2"
    asr: float | None = None
    asr_ci: tuple[float, float] | None = None
    over_refusal: float | None = None
    over_refusal_ci: tuple[float, float] | None = None
    perplexity: float | None = None


@dataclass(frozen=True)
class LabelMark:
    at: str  # ISO timestamp
    text: str  # e.g. "production -> #3 (rollback)"


@dataclass
class _Series:
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    low: list = field(default_factory=list)
    high: list = field(default_factory=list)


def _error_bars(series: _Series) -> dict | None:
    if not any(v is not None for v in series.high):
        return None
    return {
        "type": "data", "symmetric": False,
        "array": [None if h is None or y is None else h - y for y, h in zip(series.y, series.high)],
        "arrayminus": [None if lo is None or y is None else y - lo for y, lo in zip(series.y, series.low)],
    }


def _metric_series(points: list[SafetyPoint], metric: str, x_of) -> dict[str, _Series]:
    by_suite: dict[str, _Series] = defaultdict(_Series)
    for point in points:
        value = getattr(point, metric)
        if value is None:
            continue
        ci = getattr(point, f"{metric}_ci", None)
        series = by_suite[point.suite]
        series.x.append(x_of(point))
        series.y.append(value)
        series.low.append(ci[0] if ci else None)
        series.high.append(ci[1] if ci else None)
    return by_suite


MARK_COLOR = "#b3261e"  # label moves on the time charts


def safety_figure(points: list[SafetyPoint], *, metric: str, over: str, marks: list[LabelMark] = ()) -> dict:
    """One metric per suite, along the lineage (``over="lineage"``) or over calendar time
    (``over="time"``, with label moves as vertical lines)."""
    if metric not in METRIC_TITLES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRIC_TITLES)}")
    if over not in ("lineage", "time"):
        raise ValueError(f"over must be 'lineage' or 'time', got {over!r}")
    if over == "lineage":
        ordered = sorted(points, key=lambda p: (p.lineage_order, p.at))
        x_of = lambda p: p.checkpoint  # noqa: E731
    else:
        ordered = sorted(points, key=lambda p: p.at)
        x_of = lambda p: p.at  # noqa: E731
    data = []
    for suite, series in sorted(_metric_series(ordered, metric, x_of).items()):
        trace = {"type": "scatter", "mode": "lines+markers", "name": suite, "x": series.x, "y": series.y}
        error = _error_bars(series)
        if error:
            trace["error_y"] = error
        data.append(trace)
    is_rate = metric != "perplexity"
    layout = {
        "title": {"text": f"{METRIC_TITLES[metric]} {'along the lineage' if over == 'lineage' else 'over time'}"},
        "yaxis": {"title": {"text": METRIC_TITLES[metric]}, **({"tickformat": ".0%", "rangemode": "tozero"} if is_rate else {})},
        "xaxis": {"title": {"text": "checkpoint (lineage order)" if over == "lineage" else "time"},
                  **({"type": "category", "categoryorder": "array",
                      "categoryarray": list(dict.fromkeys(p.checkpoint for p in ordered))} if over == "lineage" else {"type": "date"})},
        "legend": {"orientation": "h"},
        "height": 360,
    }
    if over == "time" and marks:
        # A mark's style is said once, as the template's defaults for every shape and annotation:
        # a safety page carries up to 200 marks in each of its three time charts, and the style
        # repeated per mark was most of the page's bytes.
        layout["template"] = {"layout": {
            "shapedefaults": {"type": "line", "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
                              "line": {"color": MARK_COLOR, "width": 1, "dash": "dot"}},
            "annotationdefaults": {"xref": "x", "y": 1, "yref": "paper", "showarrow": False, "textangle": -90,
                                   "xanchor": "right", "yanchor": "top", "font": {"size": 10, "color": MARK_COLOR}},
        }}
        layout["shapes"] = [{"x0": mark.at, "x1": mark.at} for mark in marks]
        layout["annotations"] = [{"x": mark.at, "text": mark.text} for mark in marks]
    return {"data": data, "layout": layout}
