"""Plotly figure builders for registry pages: plain data in, figure JSON (a dict) out. No Django.

Figures are plain dicts ({"data": [...], "layout": {...}}) rather than plotly.graph_objects:
the browser's plotly.js draws them, and building dicts costs nothing per request.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from versions.dag_layout import layered_layout

# Kinds are strings the caller chooses: "sweep" is a node that started several runs (pages draws
# sweeps; this module knows only the kind's name, colour and marker).
KIND_COLOURS = {"reference": "#6b7280", "full": "#1f5fbf", "adapter": "#1e7a3c", "external": "#b0b7c3", "sweep": "#c0367a", "run": "#8a4fbf", "dataset": "#b5650d"}
KIND_NAMES = {
    "reference": "checkpoint (reference)",
    "full": "checkpoint (full)",
    "adapter": "checkpoint (adapter)",
    "external": "checkpoint of another model",
    "sweep": "sweep",
    "run": "unlearning run",
    "dataset": "dataset version",
}
KIND_SYMBOLS = {"sweep": "hexagon", "run": "square", "dataset": "diamond"}
METRIC_TITLES = {"asr": "Attack success rate", "over_refusal": "Over-refusal rate", "perplexity": "Held-out perplexity (utility)"}
VERDICT_COLOURS = {"safer": "#1e7a3c", "less safe": "#b3261e", "no significant difference": "#4b5563", "inconclusive": "#8a6d00"}
# Edges by what they say: checkpoint to checkpoint (lineage), data read by a run or an edge, a run's output.
EDGE_STYLES = {"lineage": {"color": "#6b7280", "width": 2}, "data": {"color": "#c9a36b", "width": 1.5, "dash": "dot"}, "run": {"color": "#b69ad6", "width": 1.5, "dash": "dash"}}
LINEAGE_VISIBLE_LAYERS = 12  # wider graphs open on their newest layers; the chart pans
LINEAGE_VISIBLE_ROWS = 10


@dataclass(frozen=True)
class LineageNode:
    id: object  # any hashable: ("checkpoint", pk), ("sweep", pk), ("run", pk), ("dataset", pk)
    label: str  # e.g. "tiny@3", "sweep 2", "run 12", "forget@1"
    kind: str  # reference | adapter | full | external | sweep | run | dataset
    hover: str = ""
    url: str = ""
    badges: tuple = ()  # label names pointing at this node (production, staging, ...)


@dataclass(frozen=True)
class LineageLink:
    parent: object
    child: object
    relation: str  # unlearned-from, ... for lineage; forget | retain | input | sweep | configuration | produced for the rest
    method: str = ""
    style: str = "lineage"  # lineage | data | run
    verdict: str = ""  # of the latest finished evaluation between parent and child, if any
    verdict_hover: str = ""
    verdict_url: str = ""


def _edge_text(link: LineageLink) -> str:
    return link.method or link.relation


def lineage_figure(nodes: list[LineageNode], links: list[LineageLink], *, title: str = "Lineage") -> dict:
    """A layered drawing of the graph (versions.dag_layout), left to right: arrows from parent to
    child, each lineage edge's method always written on it and the verdict of the latest
    evaluation between its ends under it, label badges over the checkpoints they point at.
    Every node carries its page's URL as customdata (static/js/lethe.js opens it on click)."""
    layout = layered_layout([node.id for node in nodes], [(link.parent, link.child) for link in links])
    position = layout.position
    data = []
    for style, line in EDGE_STYLES.items():
        xs, ys, sizes = [], [], []
        for link in links:
            points = layout.edge_points.get((link.parent, link.child))
            if link.style != style or not points:
                continue
            xs += [x for x, _ in points] + [None]
            ys += [y for _, y in points] + [None]
            sizes += [0] * (len(points) - 1) + [11, 0]
        if xs:
            # The arrowhead is the marker at each edge's last point, turned along the segment
            # into it (angleref "previous") and stood off the node it points at.
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{style} edges",
                    "x": xs,
                    "y": ys,
                    "line": line,
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "marker": {"symbol": "arrow", "angleref": "previous", "size": sizes, "standoff": 9, "color": line["color"]},
                }
            )
    label_x, label_y, label_text = [], [], []
    verdicts: dict[str, dict] = {}
    for link in links:
        points = layout.edge_points.get((link.parent, link.child))
        if not points:
            continue
        (x0, y0), (x1, y1) = points[0], points[1]
        mid = ((x0 + x1) / 2, (y0 + y1) / 2)
        if link.style == "lineage":
            label_x.append(mid[0])
            label_y.append(mid[1])
            label_text.append(_edge_text(link))
        if link.verdict:
            group = verdicts.setdefault(link.verdict, {"x": [], "y": [], "hover": [], "url": []})
            group["x"].append(mid[0])
            group["y"].append(mid[1])
            group["hover"].append(link.verdict_hover or link.verdict)
            group["url"].append(link.verdict_url)
    if label_text:
        data.append(
            {
                "type": "scatter",
                "mode": "text",
                "name": "methods",
                "x": label_x,
                "y": label_y,
                "text": label_text,
                "textposition": "top center",
                "textfont": {"size": 11, "color": "#374151"},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    for verdict, group in verdicts.items():
        data.append(
            {
                "type": "scatter",
                "mode": "text",
                "name": f"verdict: {verdict}",
                "x": group["x"],
                "y": group["y"],
                "text": [verdict] * len(group["x"]),
                "textposition": "bottom center",
                "textfont": {"size": 11, "color": VERDICT_COLOURS.get(verdict, "#374151")},
                "hovertext": group["hover"],
                "hoverinfo": "text",
                "customdata": group["url"],
                "showlegend": False,
            }
        )
    for kind in KIND_COLOURS:
        members = [node for node in nodes if node.kind == kind]
        if not members:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": KIND_NAMES[kind],
                "x": [position[n.id][0] for n in members],
                "y": [position[n.id][1] for n in members],
                "text": [n.label for n in members],
                "textposition": "bottom center",
                "textfont": {"size": 11},
                "hovertext": [n.hover or n.label for n in members],
                "hoverinfo": "text",
                "customdata": [n.url for n in members],
                "marker": {
                    "size": 16 if kind not in KIND_SYMBOLS else 13,
                    "symbol": KIND_SYMBOLS.get(kind, "circle"),
                    "color": KIND_COLOURS[kind],
                    "line": {"width": 1, "color": "#ffffff"},
                },
            }
        )
    # Badges: one boxed annotation per labelled node (a model has a handful of labels).
    annotations = [
        {
            "x": position[node.id][0],
            "y": position[node.id][1],
            "text": " · ".join(node.badges),
            "showarrow": False,
            "yshift": 18,
            "font": {"size": 10, "color": "#5c3d00"},
            "bgcolor": "#fff4ce",
            "bordercolor": "#b58105",
            "borderwidth": 1,
            "borderpad": 2,
            "captureevents": False,
        }
        for node in nodes
        if node.badges
    ]
    depth = len(layout.layers)
    widest = max((len(layer) for layer in layout.layers), default=1)
    first = max(0, depth - LINEAGE_VISIBLE_LAYERS)
    # Tall graphs open on their top rows, as wide ones on their newest layers; the chart pans.
    visible_rows, top = min(widest, LINEAGE_VISIBLE_ROWS), (widest - 1) / 2
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"visible": False, "range": [first - 0.5, depth - 0.5], "fixedrange": False},
            "yaxis": {"visible": False, "range": [top - visible_rows + 1 - 0.7, top + 0.7]},
            "height": max(360, 140 + 80 * visible_rows),
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 70, "l": 20, "r": 20, "b": 20},
            "dragmode": "pan",
            "hovermode": "closest",
            "annotations": annotations,
        },
    }


def weight_change_figure(weight_change: dict[str, float], *, title: str = "Weight change by module") -> dict:
    """Horizontal bars of the norm of the change per trained module, in module order."""
    names = sorted(weight_change)
    return {
        "data": [{"type": "bar", "orientation": "h", "x": [float(weight_change[name]) for name in names], "y": names, "name": "norm of change", "marker": {"color": "#1f5fbf"}}],
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

    checkpoint: str  # model@number, e.g. "tiny@3"
    lineage_order: int  # position along the lineage (generation, then number)
    at: str  # ISO timestamp of the evaluation
    suite: str  # e.g. "starter v2"
    evaluation_id: int = 0
    arm: str = ""  # "A", "B", or "A and B" when both arms are this checkpoint
    asr: float | None = None
    asr_ci: tuple[float, float] | None = None
    over_refusal: float | None = None
    over_refusal_ci: tuple[float, float] | None = None
    perplexity: float | None = None


@dataclass(frozen=True)
class LabelInterval:
    """A label pointing at one checkpoint from ``start`` until ``end`` (the next move of that
    label, its deletion, or now)."""

    label: str
    checkpoint: str  # model@number
    start: str  # ISO timestamps
    end: str
    action: str  # how it began: create, promote, rollback, advance
    current: bool = False  # still pointing there


def label_intervals(events, *, now: str) -> list[LabelInterval]:
    """Intervals from label history. ``events``: (label, ISO time, action, checkpoint name or None
    for a deletion) tuples, oldest first. Each event opens an interval that the label's next event
    closes; the last open one runs until ``now``."""
    by_label: dict[str, list] = defaultdict(list)
    for event in events:
        by_label[event[0]].append(event)
    intervals = []
    for label in sorted(by_label, key=lambda name: (name != "production", name)):
        moves = by_label[label]
        for index, (_, at, action, checkpoint) in enumerate(moves):
            if checkpoint is None:
                continue
            following = moves[index + 1][1] if index + 1 < len(moves) else None
            intervals.append(LabelInterval(label=label, checkpoint=checkpoint, start=at, end=following or now, action=action, current=following is None))
    return intervals


def _percent(value):
    return "—" if value is None else f"{value:.1%}"


def interval_text(value, ci, *, rate=True):
    shown = _percent(value) if rate else ("—" if value is None else f"{value:.2f}")
    if ci and value is not None:
        shown += f" [{_percent(ci[0])}, {_percent(ci[1])}]" if rate else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return shown


def safety_point_hover(point: SafetyPoint, metric: str) -> str:
    """What hovering a point says: which checkpoint, evaluation and arm, and the value."""
    value = getattr(point, metric)
    ci = getattr(point, f"{metric}_ci", None)
    return (
        f"{point.checkpoint} · evaluation {point.evaluation_id} · arm {point.arm}<br>{point.suite}: {METRIC_TITLES[metric]} {interval_text(value, ci, rate=metric != 'perplexity')}"
    )


@dataclass
class _Series:
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    low: list = field(default_factory=list)
    high: list = field(default_factory=list)
    hover: list = field(default_factory=list)


def _error_bars(series: _Series) -> dict | None:
    if not any(v is not None for v in series.high):
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [None if h is None or y is None else h - y for y, h in zip(series.y, series.high, strict=True)],
        "arrayminus": [None if lo is None or y is None else y - lo for y, lo in zip(series.y, series.low, strict=True)],
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
        series.hover.append(safety_point_hover(point, metric))
    return by_suite


def _point_traces(points, metric, x_of):
    data = []
    for suite, series in sorted(_metric_series(points, metric, x_of).items()):
        # Markers only: both arms of an evaluation share its time, and a line through them drew a
        # vertical stroke per evaluation.
        trace = {"type": "scatter", "mode": "markers", "name": suite, "x": series.x, "y": series.y, "hovertext": series.hover, "hoverinfo": "text", "marker": {"size": 9}}
        error = _error_bars(series)
        if error:
            trace["error_y"] = error
        data.append(trace)
    return data


def _yaxis(metric):
    is_rate = metric != "perplexity"
    return {"title": {"text": METRIC_TITLES[metric]}, **({"tickformat": ".0%", "rangemode": "tozero"} if is_rate else {})}


def safety_figure(points: list[SafetyPoint], *, metric: str) -> dict:
    """One metric per suite along the lineage: one marker per checkpoint per evaluation."""
    if metric not in METRIC_TITLES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRIC_TITLES)}")
    ordered = sorted(points, key=lambda p: (p.lineage_order, p.at))
    return {
        "data": _point_traces(ordered, metric, lambda p: p.checkpoint),
        "layout": {
            "title": {"text": f"{METRIC_TITLES[metric]} along the lineage"},
            "yaxis": _yaxis(metric),
            "xaxis": {
                "title": {"text": "checkpoint (lineage order)"},
                "type": "category",
                "categoryorder": "array",
                "categoryarray": list(dict.fromkeys(p.checkpoint for p in ordered)),
                "automargin": True,
            },
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 80},
            "height": 360,
        },
    }


LABEL_COLOURS = {"production": ("#1e7a3c", "#7fbf8f"), "staging": ("#b5650d", "#e3b27a")}
OTHER_LABEL_COLOURS = ("#8a4fbf", "#c7a8e3")
DAY_MS = 86_400_000
LANE_TEXT_LIMIT = 40


def _ms_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def safety_time_figure(points: list[SafetyPoint], *, metric: str, intervals: list[LabelInterval] = (), reference: tuple[float, str] | None = None) -> dict:
    """One metric per suite over calendar time (one marker per checkpoint per evaluation) above
    a lane per label that shades when it pointed at which checkpoint (horizontal bars, named in
    the legend, the checkpoint written inside). ``reference``: (value, name) of a horizontal line,
    e.g. the non-inferiority limit against production."""
    if metric not in METRIC_TITLES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRIC_TITLES)}")
    ordered = sorted(points, key=lambda p: p.at)
    data = _point_traces(ordered, metric, lambda p: p.at)
    lanes = list(dict.fromkeys(interval.label for interval in intervals))
    for label in lanes:
        own = [interval for interval in intervals if interval.label == label]
        dark, light = LABEL_COLOURS.get(label, OTHER_LABEL_COLOURS)
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": f"{label} (label)",
                "legendgroup": label,
                "yaxis": "y2",
                "base": [interval.start for interval in own],
                "x": [_ms_between(interval.start, interval.end) for interval in own],
                # Names inside the bars only on a short history: fitting text into hundreds of narrow
                # bars was most of the chart's drawing time; the hover and the table still name them.
                "y": [label] * len(own),
                "text": [interval.checkpoint for interval in own] if len(own) <= LANE_TEXT_LIMIT else None,
                "textposition": "inside",
                "insidetextanchor": "middle",
                "textfont": {"color": "#ffffff"},
                "cliponaxis": True,
                "hovertext": [
                    f"{label} → {interval.checkpoint} ({interval.action})<br>{interval.start[:16].replace('T', ' ')} to "
                    + ("now" if interval.current else interval.end[:16].replace("T", " "))
                    for interval in own
                ],
                "hoverinfo": "text",
                # Neighbouring intervals alternate two shades of the label's colour.
                "marker": {"color": [dark if index % 2 == 0 else light for index in range(len(own))], "line": {"color": "#ffffff", "width": 1}},
            }
        )
    times = [p.at for p in ordered] + [i.start for i in intervals] + [i.end for i in intervals]
    if reference is not None and times:
        value, name = reference
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": [min(times), max(times)],
                "y": [value, value],
                "line": {"color": "#b3261e", "dash": "dash", "width": 1.5},
                "hoverinfo": "name",
            }
        )
    layout = {
        "title": {"text": f"{METRIC_TITLES[metric]} over time"},
        "xaxis": {"type": "date", "anchor": "y2" if lanes else "y"},
        "yaxis": {**_yaxis(metric), "domain": [0.3 if lanes else 0, 1]},
        # Under the time axis: in a chart a third of the page wide, a legend of suites, labels and
        # the limit wraps into rows that above the plot would cover its title.
        "legend": {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"},
        "margin": {"t": 50},
        "barmode": "overlay",
        # A checkpoint's name is written in its interval only where it fits.
        "uniformtext": {"minsize": 9, "mode": "hide"},
        "height": 460 + 18 * max(len(lanes) - 1, 0),
    }
    if lanes:
        layout["yaxis2"] = {
            "domain": [0, 0.2],
            "type": "category",
            "categoryorder": "array",
            "categoryarray": lanes[::-1],
            "title": {"text": "labels"},
            "automargin": True,
            "fixedrange": True,
        }
    return {"data": data, "layout": layout}
