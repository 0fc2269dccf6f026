"""Plotly figure builders for evaluation reports: an evaluation's metrics JSON (see
evals.metrics.arm_metrics) in, figure JSON out. No Django."""
from __future__ import annotations

ARM_COLOURS = {"A": "#6b7280", "B": "#1f5fbf"}
RATE_TITLES = {"asr": "Attack success rate", "over_refusal_rate": "Over-refusal rate", "refusal_rate": "Refusal rate"}


def _bar(arm: str, names: list[str], rates: list[dict | None]) -> dict:
    values, plus, minus, hover = [], [], [], []
    for rate in rates:
        value = rate.get("value") if rate else None
        ci = rate.get("ci") if rate else None
        values.append(value)
        plus.append(None if value is None or not ci else ci[1] - value)
        minus.append(None if value is None or not ci else value - ci[0])
        hover.append(f"{rate['successes']}/{rate['trials']}" if rate and rate.get("trials") else "no scoreable cases")
    return {
        "type": "bar", "name": f"arm {arm}", "x": names, "y": values, "hovertext": hover,
        "marker": {"color": ARM_COLOURS[arm]},
        "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "visible": True},
    }


def arms_rate_figure(metrics: dict, *, slice_name: str, rate: str = "asr") -> dict:
    """A versus B bars of one rate for every value of a slice (``category``, ``attack_family``,
    ``modality``), with the Wilson intervals as error bars."""
    if rate not in RATE_TITLES:
        raise ValueError(f"unknown rate {rate!r}; expected one of {sorted(RATE_TITLES)}")
    key = f"by_{slice_name}"
    # A slice with no trials for this rate (e.g. benign categories for ASR) has nothing to draw.
    names = sorted(
        name
        for name in set(metrics.get("A", {}).get(key, {})) | set(metrics.get("B", {}).get(key, {}))
        if any(((metrics.get(arm, {}).get(key, {}).get(name) or {}).get(rate) or {}).get("trials") for arm in ("A", "B"))
    )
    data = [_bar(arm, names, [metrics.get(arm, {}).get(key, {}).get(name, {}).get(rate) for name in names]) for arm in ("A", "B")]
    return {
        "data": data,
        "layout": {
            "title": {"text": f"{RATE_TITLES[rate]} by {slice_name.replace('_', ' ')}"},
            "barmode": "group",
            "yaxis": {"title": {"text": RATE_TITLES[rate]}, "tickformat": ".0%", "range": [0, 1.05]},
            "xaxis": {"automargin": True},
            "legend": {"orientation": "h"},
            "height": 380,
        },
    }


def headline_figure(metrics: dict) -> dict:
    """The overall rates of both arms side by side, with intervals."""
    names = list(RATE_TITLES)
    labels = [RATE_TITLES[name] for name in names]
    data = [_bar(arm, labels, [metrics.get(arm, {}).get("overall", {}).get(name) for name in names]) for arm in ("A", "B")]
    return {
        "data": data,
        "layout": {
            "title": {"text": "Headline rates, A versus B"},
            "barmode": "group",
            "yaxis": {"tickformat": ".0%", "range": [0, 1.05]},
            "legend": {"orientation": "h"},
            "height": 340,
        },
    }
