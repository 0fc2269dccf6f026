import re
from pathlib import Path

import plotly
import pytest

from evals.charts import arms_rate_figure, judge_categories_figure
from unlearning.charts import loss_curve_figure
from versions.charts import LabelInterval, LineageLink, LineageNode, SafetyPoint, label_intervals, lineage_figure, safety_figure, safety_time_figure
from versions.dag_layout import layered_layout


def test_layers_are_longest_paths_and_sources_sit_just_before_their_nearest_child():
    # given a diamond 1 -> 2 -> 4 and 1 -> 3 -> 4, 4 -> 5, and a source d feeding 5 only
    edges = [(1, 2), (1, 3), (2, 4), (3, 4), (4, 5), ("d", 5)]

    # when
    layout = layered_layout([1, 2, 3, 4, 5, "d"], edges)

    # then
    assert layout.layers == [[1], [2, 3], [4, "d"], [5]]
    assert layout.position == {1: (0, 0.0), 2: (1, 0.5), 3: (1, -0.5), 4: (2, 0.5), "d": (2, -0.5), 5: (3, 0.0)}
    assert layout.crossings == 0


def test_barycentre_ordering_removes_the_crossing_the_input_order_makes():
    # given two chains a -> b -> c and x -> y -> z, listed so that the middle layer is crossed
    nodes = ["a", "x", "y", "b", "c", "z"]
    edges = [("a", "b"), ("b", "c"), ("x", "y"), ("y", "z")]

    # when
    layout = layered_layout(nodes, edges)

    # then the middle layer follows its parents, so no edge crosses another
    assert layout.layers == [["a", "x"], ["b", "y"], ["c", "z"]]
    assert layout.crossings == 0


def test_a_long_edge_bends_through_one_point_per_layer_it_crosses():
    # given a -> b -> c -> d and a shortcut a -> d
    layout = layered_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])

    # then the shortcut has a bend point in layers 1 and 2, beside b and c
    assert [x for x, _ in layout.edge_points[("a", "d")]] == [0, 1, 2, 3]
    assert layout.layers == [["a"], ["b"], ["c"], ["d"]]
    assert layout.crossings == 0


def test_a_cycle_or_unknown_nodes_do_not_break_the_layout():
    layout = layered_layout([1, 2], [(1, 2), (2, 1), (1, 99)])
    assert sorted(node for layer in layout.layers for node in layer) == [1, 2]


def test_a_few_hundred_nodes_lay_out_quickly():
    # a binary-ish tree of 300 checkpoints with a run beside each child
    import time

    nodes, edges = [0], []
    for child in range(1, 300):
        nodes += [child, ("run", child)]
        edges += [((child - 1) // 2, ("run", child)), (("run", child), child), ((child - 1) // 2, child)]
    began = time.perf_counter()
    layout = layered_layout(nodes, edges)
    assert time.perf_counter() - began < 2.0
    assert len(layout.position) == len(nodes)
    assert layout.crossings == 0  # a tree never needs a crossing


def test_loss_curves_get_one_trace_per_term_with_gaps_kept():
    # when
    figure = loss_curve_figure([{"step": 1, "loss": 2.0, "forget": 1.5}, {"step": 2, "loss": 1.0, "retain": 0.5}])

    # then
    assert [(t["name"], t["x"], t["y"]) for t in figure["data"]] == [("loss", [1, 2], [2.0, 1.0]), ("forget", [1, 2], [1.5, None]), ("retain", [1, 2], [None, 0.5])]


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


def test_label_intervals_follow_each_labels_history_exactly():
    # given production created on #1, promoted to #2, rolled back to #1; staging on #2 then deleted
    events = [
        ("production", "2025-01-01 00:00:00", "create", "m@1"),
        ("staging", "2025-01-02 00:00:00", "create", "m@2"),
        ("production", "2025-01-03 00:00:00", "promote", "m@2"),
        ("staging", "2025-01-04 00:00:00", "delete", None),
        ("production", "2025-01-05 00:00:00", "rollback", "m@1"),
    ]

    # when
    intervals = label_intervals(events, now="2025-01-09 00:00:00")

    # then production comes first, each move closes the interval before it, a deletion opens none
    assert intervals == [
        LabelInterval("production", "m@1", "2025-01-01 00:00:00", "2025-01-03 00:00:00", "create"),
        LabelInterval("production", "m@2", "2025-01-03 00:00:00", "2025-01-05 00:00:00", "promote"),
        LabelInterval("production", "m@1", "2025-01-05 00:00:00", "2025-01-09 00:00:00", "rollback", current=True),
        LabelInterval("staging", "m@2", "2025-01-02 00:00:00", "2025-01-04 00:00:00", "create"),
    ]


def test_safety_over_time_draws_points_with_their_evaluation_and_label_lanes_as_bars():
    # given two arms of evaluation 7 at one time, and production on m@1 then m@2
    points = [
        SafetyPoint(checkpoint="m@2", lineage_order=1, at="2025-01-02 00:00:00", suite="core v1", evaluation_id=7, arm="B", asr=0.1, asr_ci=(0.0, 0.3)),
        SafetyPoint(checkpoint="m@1", lineage_order=0, at="2025-01-02 00:00:00", suite="core v1", evaluation_id=7, arm="A", asr=0.6),
    ]
    intervals = [
        LabelInterval("production", "m@1", "2025-01-01 00:00:00", "2025-01-03 00:00:00", "create"),
        LabelInterval("production", "m@2", "2025-01-03 00:00:00", "2025-01-04 00:00:00", "promote", current=True),
    ]

    # when
    lineage = safety_figure(points, metric="asr")
    timeline = safety_time_figure(points, metric="asr", intervals=intervals, reference=(0.5, "limit"))

    # then points are markers only (no vertical stroke between the arms), and say what they are
    assert (lineage["data"][0]["x"], lineage["data"][0]["y"], lineage["data"][0]["mode"]) == (["m@1", "m@2"], [0.6, 0.1], "markers")
    assert lineage["data"][0]["error_y"]["array"] == [None, pytest.approx(0.2)]
    points_trace, lane, limit = timeline["data"]
    assert points_trace["hovertext"] == [
        "m@2 · evaluation 7 · arm B<br>core v1: Attack success rate 10.0% [0.0%, 30.0%]",
        "m@1 · evaluation 7 · arm A<br>core v1: Attack success rate 60.0%",
    ]
    assert points_trace["mode"] == "markers"
    # the label is a lane of bars, one per interval, named in the legend
    assert (lane["type"], lane["name"], lane["yaxis"], lane["y"]) == ("bar", "production (label)", "y2", ["production", "production"])
    assert (lane["base"], lane["x"], lane["text"]) == (["2025-01-01 00:00:00", "2025-01-03 00:00:00"], [2 * 86_400_000, 86_400_000], ["m@1", "m@2"])
    assert lane["hovertext"][1] == "production → m@2 (promote)<br>2025-01-03 00:00 to now"
    assert (limit["name"], limit["y"], limit["x"]) == ("limit", [0.5, 0.5], ["2025-01-01 00:00:00", "2025-01-04 00:00:00"])
    assert "annotations" not in timeline["layout"] and "shapes" not in timeline["layout"]
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        safety_time_figure(points, metric="bleu")


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


def test_a_large_lineage_opens_on_its_newest_layers_and_top_rows_and_pans():
    # given a tree of 300 checkpoints (9 layers, up to 128 in one)
    nodes = [LineageNode(id=i, label=f"m@{i}", kind="adapter") for i in range(300)]
    links = [LineageLink(parent=(i - 1) // 2, child=i, relation="unlearned-from", method="npo") for i in range(1, 300)]

    # when
    figure = lineage_figure(nodes, links)

    # then every node is drawn, and the view is bounded: 12 layers, 10 rows, pannable
    layout = figure["layout"]
    assert len(next(t for t in figure["data"] if t["name"] == "checkpoint (adapter)")["x"]) == 300
    assert layout["xaxis"]["range"] == [-0.5, 8.5]
    assert layout["yaxis"]["range"] == [63.5 - 10 + 1 - 0.7, 63.5 + 0.7]
    assert (layout["height"], layout["dragmode"]) == (940, "pan")
