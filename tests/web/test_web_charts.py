import re
from pathlib import Path

import plotly
import pytest

from evals.charts import arms_rate_figure, judge_categories_figure
from unlearning.charts import loss_curve_figure
from versions.charts import LabelMark, LineageLink, LineageNode, SafetyPoint, lineage_depths, safety_figure


def test_lineage_depth_is_the_longest_path_from_a_root():
    # given a diamond 1 -> 2 -> 4 and 1 -> 3 -> 4, plus 4 -> 5
    nodes = [LineageNode(id=i, label=f"#{i}", kind="adapter") for i in range(1, 6)]
    links = [LineageLink(1, 2, "unlearned-from"), LineageLink(1, 3, "unlearned-from"), LineageLink(2, 4, "merged-from"),
             LineageLink(3, 4, "merged-from"), LineageLink(4, 5, "unlearned-from")]

    # when / then
    assert lineage_depths(nodes, links) == {1: 0, 2: 1, 3: 1, 4: 2, 5: 3}


def test_loss_curves_get_one_trace_per_term_with_gaps_kept():
    # when
    figure = loss_curve_figure([{"step": 1, "loss": 2.0, "forget": 1.5}, {"step": 2, "loss": 1.0, "retain": 0.5}])

    # then
    assert [(t["name"], t["x"], t["y"]) for t in figure["data"]] == [
        ("loss", [1, 2], [2.0, 1.0]), ("forget", [1, 2], [1.5, None]), ("retain", [1, 2], [None, 0.5])
    ]


def test_rate_bars_carry_wilson_intervals_as_asymmetric_error_bars():
    # given
    rate = {"value": 0.5, "successes": 1, "trials": 2, "ci": [0.1, 0.9]}
    empty = {"value": None, "successes": 0, "trials": 0, "ci": None}
    metrics = {"A": {"by_category": {"fraud": {"asr": rate}, "benign": {"asr": empty}}}, "B": {"by_category": {"fraud": {"asr": empty}}}}

    # when
    figure = arms_rate_figure(metrics, slice_name="category")

    # then
    a, b = figure["data"]
    assert (a["x"], a["y"], a["error_y"]["array"], a["error_y"]["arrayminus"]) == (["fraud"], [0.5], [pytest.approx(0.4)], [pytest.approx(0.4)])
    assert (b["y"], b["hovertext"]) == ([None], ["no scoreable cases"])


def test_safety_over_time_marks_label_moves_and_refuses_unknown_metrics():
    # given
    points = [SafetyPoint(checkpoint="#2", lineage_order=1, at="2025-01-02T00:00:00", suite="core v1", asr=0.1, asr_ci=(0.0, 0.3)),
              SafetyPoint(checkpoint="#1", lineage_order=0, at="2025-01-01T00:00:00", suite="core v1", asr=0.6)]
    marks = [LabelMark(at="2025-01-03T00:00:00", text="production → #2 (promote)")]

    # when
    lineage = safety_figure(points, metric="asr", over="lineage")
    timeline = safety_figure(points, metric="asr", over="time", marks=marks)

    # then
    assert (lineage["data"][0]["x"], lineage["data"][0]["y"]) == (["#1", "#2"], [0.6, 0.1])
    assert lineage["data"][0]["error_y"]["array"] == [None, pytest.approx(0.2)]
    assert timeline["layout"]["shapes"] == [{"x0": "2025-01-03T00:00:00", "x1": "2025-01-03T00:00:00"}]
    assert timeline["layout"]["annotations"] == [{"x": "2025-01-03T00:00:00", "text": "production → #2 (promote)"}]
    # every mark's style is said once, as the template's defaults (plotly applies them per item)
    defaults = timeline["layout"]["template"]["layout"]
    assert (defaults["shapedefaults"]["yref"], defaults["shapedefaults"]["line"]["dash"]) == ("paper", "dot")
    assert (defaults["annotationdefaults"]["textangle"], defaults["annotationdefaults"]["yref"]) == (-90, "paper")
    assert "template" not in lineage["layout"]
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        safety_figure(points, metric="bleu", over="time")


def test_judge_category_bars_order_codes_naturally_and_count_zero_where_an_arm_named_none():
    # given Llama Guard's summaries for two arms (evals.judge_records.judgements_summary)
    metrics = {
        "A": {"judge": {"categories": {"S2": 3, "S10": 1}, "category_names": {"S2": "Non-Violent Crimes", "S10": "Hate"}}},
        "B": {"judge": {"categories": {"S9": 2}, "category_names": {"S9": "Indiscriminate Weapons"}}},
    }

    # when
    figure = judge_categories_figure(metrics)

    # then S2 < S9 < S10, each arm a bar per code
    a, b = figure["data"]
    assert a["x"] == b["x"] == ["S2 Non-Violent Crimes", "S9 Indiscriminate Weapons", "S10 Hate"]
    assert (a["y"], b["y"]) == ([3, 0, 1], [0, 2, 0])


def test_the_served_plotly_bundle_is_the_plotly_js_of_the_plotly_package():
    # the pages draw with static/vendor/plotly's basic bundle the figures the Python package builds
    package = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")[:200]
    served = (Path(__file__).resolve().parents[2] / "static" / "vendor" / "plotly" / "plotly-basic.min.js").read_text(encoding="utf-8")[:200]

    version = re.search(r"\* plotly\.js v(\S+)", package).group(1)
    assert re.search(r"\* plotly\.js \(basic - minified\) v(\S+)", served).group(1) == version
