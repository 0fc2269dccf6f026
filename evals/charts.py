"""Plotly figure builders for evaluation reports: an evaluation's metrics JSON (see
evals.metrics.arm_metrics) in, figure JSON out. No Django."""

from __future__ import annotations

from evals.judge_records import category_code_order

ARM_COLOURS = {"A": "#6b7280", "B": "#1f5fbf"}
RATE_TITLES = {
    "asr": "Attack success rate",
    "failure_to_help_rate": "Failure to help",
    "over_refusal_rate": "Over-refusal rate",
    "refusal_rate": "Refusal rate",
}


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
        "type": "bar",
        "name": f"arm {arm}",
        "x": names,
        "y": values,
        "hovertext": hover,
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
            "xaxis": {"automargin": True, "tickangle": -35},
            # Above the plot: below it, the legend would sit on the slanted category names.
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 90},
            "height": 400,
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
            "xaxis": {"automargin": True},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 90},
            "height": 360,
        },
    }


MODALITY_LABELS = {"text": "Text attacks", "image+text": "Image attacks"}


def cross_modal_figure(cross_modal: dict) -> dict:
    """ASR by modality (text attacks, image attacks), A versus B with Wilson error bars, and the
    transfer ratio (with its interval, or why it is undefined) annotated above the bars."""
    by_modality = cross_modal.get("by_modality") or {}
    modalities = [name for name in MODALITY_LABELS if name in by_modality]
    labels = [MODALITY_LABELS[name] for name in modalities]
    data = [_bar(arm, labels, [by_modality[name][f"asr_{arm.lower()}"] for name in modalities]) for arm in ("A", "B")]
    transfer = cross_modal.get("transfer") or {}
    if transfer.get("ratio") is not None:
        ci = transfer.get("ci")
        text = f"transfer ratio {transfer['ratio']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else " (no interval)")
    else:
        text = "transfer ratio " + (transfer.get("undefined_reason") or "undefined")
    return {
        "data": data,
        "layout": {
            "title": {"text": "Attack success by modality, A versus B"},
            "barmode": "group",
            "yaxis": {"title": {"text": "Attack success rate"}, "tickformat": ".0%", "range": [0, 1.15]},
            "legend": {"orientation": "h"},
            "annotations": [
                {"text": text, "xref": "paper", "yref": "paper", "x": 0.5, "y": 1.0, "showarrow": False, "font": {"size": 12}, "xanchor": "center", "yanchor": "bottom"}
            ],
            "height": 360,
        },
    }


def modality_asr_figure(points: list[dict]) -> dict:
    """ASR per modality per checkpoint along the lineage: one line per (suite, modality).

    Each point: {"checkpoint": "#3", "lineage_order": int, "at": iso, "suite": str, "modality": str,
    "asr": float, "ci": [low, high] | None}.
    """
    ordered = sorted(points, key=lambda p: (p["lineage_order"], p["at"]))
    series: dict[tuple[str, str], dict] = {}
    for point in ordered:
        if point["asr"] is None:
            continue
        trace = series.setdefault((point["suite"], point["modality"]), {"x": [], "y": [], "plus": [], "minus": []})
        ci = point.get("ci")
        trace["x"].append(point["checkpoint"])
        trace["y"].append(point["asr"])
        trace["plus"].append(ci[1] - point["asr"] if ci else None)
        trace["minus"].append(point["asr"] - ci[0] if ci else None)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"{MODALITY_LABELS.get(modality, modality)} ({suite})",
            "x": trace["x"],
            "y": trace["y"],
            "line": {"dash": "dot" if modality == "image+text" else "solid"},
            "error_y": {"type": "data", "symmetric": False, "array": trace["plus"], "arrayminus": trace["minus"]},
        }
        for (suite, modality), trace in sorted(series.items())
    ]
    return {
        "data": data,
        "layout": {
            "title": {"text": "Attack success rate by modality along the lineage"},
            "yaxis": {"title": {"text": "Attack success rate"}, "tickformat": ".0%", "rangemode": "tozero"},
            "xaxis": {
                "title": {"text": "checkpoint (lineage order)"},
                "type": "category",
                "categoryorder": "array",
                "categoryarray": list(dict.fromkeys(p["checkpoint"] for p in ordered)),
            },
            "legend": {"orientation": "h"},
            "height": 360,
        },
    }


def judge_categories_figure(metrics: dict) -> dict:
    """How often the judge named each hazard category (Llama Guard's S1..S14) in each arm's
    judgements: one bar per code, A versus B. From metrics[arm]["judge"] (evals.judge_records)."""
    summaries = {arm: (metrics.get(arm) or {}).get("judge") or {} for arm in ("A", "B")}
    names = {code: name for summary in summaries.values() for code, name in (summary.get("category_names") or {}).items()}
    codes = list(dict.fromkeys(code for arm in ("A", "B") for code in summaries[arm].get("categories") or {}))
    codes.sort(key=category_code_order)
    labels = [f"{code} {names[code]}" if code in names else code for code in codes]
    data = [
        {"type": "bar", "name": f"arm {arm}", "x": labels, "y": [(summaries[arm].get("categories") or {}).get(code, 0) for code in codes], "marker": {"color": ARM_COLOURS[arm]}}
        for arm in ("A", "B")
    ]
    return {
        "data": data,
        "layout": {
            "title": {"text": "Hazard categories named by the judge, A versus B"},
            "barmode": "group",
            "yaxis": {"title": {"text": "cases"}, "rangemode": "tozero", "tickformat": "d"},
            "xaxis": {"automargin": True, "tickangle": -35},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 90},
            "height": 400,
        },
    }
