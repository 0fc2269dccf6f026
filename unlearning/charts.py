"""Plotly figure builders for unlearning runs: plain data in, figure JSON out. No Django."""

from __future__ import annotations


def loss_curve_terms(loss_curve: list[dict]) -> list[str]:
    """Every numeric term that appears in the curve, in first-seen order ("step" excluded)."""
    terms: list[str] = []
    for point in loss_curve:
        for key, value in point.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and key not in terms:
                terms.append(key)
    return terms


def loss_curve_figure(loss_curve: list[dict], *, title: str = "Loss by term") -> dict:
    """One line per loss term against the training step; a term missing at a step is a gap."""
    steps = [point.get("step", index + 1) for index, point in enumerate(loss_curve)]
    data = [{"type": "scatter", "mode": "lines", "name": term, "x": steps, "y": [point.get(term) for point in loss_curve]} for term in loss_curve_terms(loss_curve)]
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": "loss"}},
            "legend": {"orientation": "h"},
            "height": 360,
        },
    }
