"""The pure parts of a sweep: grid expansion, spread across seeds, best per method, Pareto frontier."""

import json

import pytest

from sweeps.comparison import Configuration, GridError, best_per_method, grid_expand, method_summary, pareto_frontier, seed_spread, weight_change_norm
from sweeps.reporting import comparison_table


def test_three_methods_two_values_two_seeds_expand_to_twelve_configurations_in_request_order():
    # given three methods, each with a grid of two values and two seeds
    entries = [
        {"method": "gradient_ascent", "hyperparameters": {"max_steps": 2}, "grid": {"learning_rate": [1e-3, 3e-3]}, "seeds": [0, 1]},
        {"method": "npo", "hyperparameters": {"max_steps": 2}, "grid": {"beta": [0.1, 0.5]}, "seeds": [0, 1]},
        {"method": "rmu", "grid": {"steering_coefficient": [5.0, 20.0]}, "seeds": [3, 4]},
    ]

    # when expanded
    configurations = grid_expand(entries)

    # then one configuration per method, value and seed, the seed varying fastest
    assert configurations == [
        Configuration("gradient_ascent", {"max_steps": 2, "learning_rate": 1e-3}, 0),
        Configuration("gradient_ascent", {"max_steps": 2, "learning_rate": 1e-3}, 1),
        Configuration("gradient_ascent", {"max_steps": 2, "learning_rate": 3e-3}, 0),
        Configuration("gradient_ascent", {"max_steps": 2, "learning_rate": 3e-3}, 1),
        Configuration("npo", {"max_steps": 2, "beta": 0.1}, 0),
        Configuration("npo", {"max_steps": 2, "beta": 0.1}, 1),
        Configuration("npo", {"max_steps": 2, "beta": 0.5}, 0),
        Configuration("npo", {"max_steps": 2, "beta": 0.5}, 1),
        Configuration("rmu", {"steering_coefficient": 5.0}, 3),
        Configuration("rmu", {"steering_coefficient": 5.0}, 4),
        Configuration("rmu", {"steering_coefficient": 20.0}, 3),
        Configuration("rmu", {"steering_coefficient": 20.0}, 4),
    ]
    assert len({configuration.group for configuration in configurations}) == 6
    assert configurations[0].group == 'gradient_ascent {"learning_rate":0.001,"max_steps":2}'


def test_a_two_name_grid_is_their_product_and_a_missing_seed_list_is_seed_zero():
    configurations = grid_expand([{"method": "npo", "grid": {"beta": [0.1, 0.2], "learning_rate": [1e-4, 1e-3, 1e-2]}}])
    assert [(c.hyperparameters["beta"], c.hyperparameters["learning_rate"], c.seed) for c in configurations] == [
        (0.1, 1e-4, 0),
        (0.1, 1e-3, 0),
        (0.1, 1e-2, 0),
        (0.2, 1e-4, 0),
        (0.2, 1e-3, 0),
        (0.2, 1e-2, 0),
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "configurations must be a non-empty list of {method, hyperparameters, grid, seeds}."),
        ([{"hyperparameters": {}}], "configuration 1 needs a method."),
        ([{"method": "npo", "grid": {"beta": []}}], "configuration 1: grid.beta must be a non-empty list of values."),
        ([{"method": "npo", "grid": {"beta": 0.1}}], "configuration 1: grid.beta must be a non-empty list of values."),
        ([{"method": "npo", "grid": {"beta": [0.1, 0.1]}}], "configuration 1: grid.beta repeats a value."),
        ([{"method": "npo", "hyperparameters": {"beta": 0.1}, "grid": {"beta": [0.2]}}], "configuration 1: beta is both fixed and on the grid; give it in one place."),
        ([{"method": "npo", "seeds": []}], "configuration 1: seeds must be a non-empty list of non-negative integers."),
        ([{"method": "npo", "seeds": [1, True]}], "configuration 1: seeds must be a non-empty list of non-negative integers."),
        ([{"method": "npo", "seeds": [1, 1]}], "configuration 1: seeds repeat a value."),
        ([{"method": "npo"}, {"method": "npo"}], "configuration 2 repeats npo with {} and seed 0."),
        ([{"method": "npo", "seed": 3}], "configuration 1 has unknown field(s) seed."),
        ([{"method": "npo", "seeds": list(range(201))}], "The sweep expands to more than 200 configurations; split it."),
    ],
)
def test_a_grid_that_cannot_be_expanded_is_refused_saying_why(entries, message):
    with pytest.raises(GridError) as raised:
        grid_expand(entries)
    assert str(raised.value) == message


def test_the_pareto_frontier_keeps_exactly_the_points_nothing_beats_on_both_axes():
    # given points (attack success, failure to help), both lower is better
    points = [
        ("a", 0.10, 0.50),
        ("b", 0.20, 0.20),
        ("c", 0.30, 0.25),  # beaten by b on both
        ("d", 0.50, 0.00),
        ("e", 0.10, 0.60),  # beaten by a: equal ASR, more failure to help
        ("f", 0.20, 0.20),  # equal to b: both stay
        ("g", None, 0.00),  # no ASR (failed): never on it
        ("h", 0.00, 0.90),
    ]
    assert pareto_frontier(points) == ["h", "a", "b", "f", "d"]
    assert pareto_frontier([]) == []
    assert pareto_frontier([("only", 0.4, 0.4)]) == ["only"]


def test_seed_spread_is_the_mean_with_a_t_interval_and_counts_missing_seeds():
    assert seed_spread([0.1, 0.3]) == {"mean": pytest.approx(0.2), "ci": [pytest.approx(0.2 - 12.706 * 0.1), pytest.approx(0.2 + 12.706 * 0.1)], "n": 2, "missing": 0}
    # sd of (1, 2, 3) is 1; t(2) = 4.303
    assert seed_spread([1.0, 2.0, 3.0, None]) == {"mean": 2.0, "ci": [pytest.approx(2 - 4.303 / 3**0.5), pytest.approx(2 + 4.303 / 3**0.5)], "n": 3, "missing": 1}
    assert seed_spread([0.4]) == {"mean": 0.4, "ci": None, "n": 1, "missing": 0}
    assert seed_spread([None]) == {"mean": None, "ci": None, "n": 0, "missing": 1}


def test_the_best_configuration_of_each_method_has_the_lowest_attack_success_then_failure_to_help():
    rows = [
        {"id": 1, "method": "npo", "asr": 0.3, "failure_to_help": 0.1},
        {"id": 2, "method": "npo", "asr": 0.1, "failure_to_help": 0.4},
        {"id": 3, "method": "npo", "asr": 0.1, "failure_to_help": 0.2},
        {"id": 4, "method": "rmu", "asr": None, "failure_to_help": 0.0},
        {"id": 5, "method": "rmu", "asr": 0.5, "failure_to_help": None},
        {"id": 6, "method": "kl", "asr": None, "failure_to_help": None},
    ]
    assert best_per_method(rows) == {"npo": 3, "rmu": 5}


def test_weight_change_norm_is_the_norm_over_modules():
    assert weight_change_norm({"a": 3.0, "b": 4.0}) == 5.0
    assert weight_change_norm({}) is None and weight_change_norm(None) is None


def test_the_comparison_table_has_one_line_per_configuration_and_suite_and_names_failures():
    rate = {"value": 0.25, "ci": [0.1, 0.5], "successes": 1, "trials": 4}
    cell = {
        "suite": "core@1",
        "evaluation": 9,
        "verdict": "safer",
        "gate_passes": True,
        "asr": rate,
        "asr_text": rate,
        "asr_image": None,
        "over_refusal": None,
        "failure_to_help": {"value": 0.0, "ci": [0.0, 0.49], "successes": 0, "trials": 4},
        "perplexity_ratio": 1.05,
    }
    empty = {**cell, "evaluation": None, "verdict": "", "gate_passes": None, "asr": None, "asr_text": None, "failure_to_help": None, "perplexity_ratio": None}
    comparison = {
        "suites": ["core@1"],
        "rows": [
            {
                "id": 11,
                "position": 1,
                "method": "npo",
                "hyperparameters": {"max_steps": 2},
                "seed": 0,
                "status": "succeeded",
                "error": "",
                "checkpoint": {"id": 5, "model": "tiny", "number": 2},
                "weight_change": 0.5,
                "suites": [cell],
            },
            {
                "id": 12,
                "position": 2,
                "method": "rmu",
                "hyperparameters": {"layer": 50},
                "seed": 0,
                "status": "failed",
                "error": "boom",
                "checkpoint": None,
                "weight_change": None,
                "suites": [empty],
            },
        ],
        "best_per_method": [{"npo": 11}],
        "frontier": [[11]],
        "utility_frontier": [[11]],
    }
    lines = comparison_table(comparison).splitlines()
    assert lines[0].split() == [
        "#",
        "method",
        "hyperparameters",
        "seed",
        "status",
        "checkpoint",
        "weight",
        "suite",
        "ASR",
        "ASR",
        "text",
        "ASR",
        "image",
        "over-refusal",
        "fail-to-help",
        "ppl",
        "ratio",
        "verdict",
        "gate",
        "eval",
        "mark",
    ]
    assert lines[1].split() == [
        "1",
        "npo",
        json.dumps({"max_steps": 2}).replace(" ", ""),
        "0",
        "succeeded",
        "tiny@2",
        "0.500",
        "core@1",
        "25.0%",
        "[10.0%,",
        "50.0%]",
        "25.0%",
        "[10.0%,",
        "50.0%]",
        "-",
        "-",
        "0.0%",
        "[0.0%,",
        "49.0%]",
        "1.050",
        "safer",
        "passes",
        "9",
        "*PU",
    ]
    assert lines[2].split() == ["2", "rmu", '{"layer":50}', "0", "failed", "-", "-", "core@1"] + ["-"] * 10
    assert lines[3:] == ["configuration 2 (rmu, seed 0) failed: boom", "core@1: Pareto frontier (ASR vs failure to help): #1", "core@1: Pareto frontier (ASR vs utility loss): #1"]


def _rate(successes, trials):
    return {"value": successes / trials, "ci": [0.0, 1.0], "successes": successes, "trials": trials}


def _cell(asr, failure, text, image, parent_text, parent_image, perplexity_ratio):
    return {
        "asr": asr,
        "failure_to_help": failure,
        "asr_text": text,
        "asr_image": image,
        "asr_parent_text": parent_text,
        "asr_parent_image": parent_image,
        "perplexity_ratio": perplexity_ratio,
    }


def test_the_method_summary_takes_each_methods_best_configuration_and_pools_each_modality_over_suites():
    # given two methods over a text suite and an image suite (which holds text forms as well),
    # npo's second configuration better on average, and a method whose only configuration failed
    def row(id, position, method, text_suite_asr, image_suite_asr, failure):
        return {
            "id": id,
            "position": position,
            "method": method,
            "suites": [
                _cell(_rate(text_suite_asr, 10), _rate(failure, 4), _rate(text_suite_asr, 10), None, _rate(8, 10), None, 1.25),
                _cell(
                    _rate(image_suite_asr, 20),
                    _rate(failure, 4),
                    _rate(image_suite_asr // 2, 10),
                    _rate(image_suite_asr - image_suite_asr // 2, 10),
                    _rate(7, 10),
                    _rate(9, 10),
                    1.75,
                ),
            ],
        }

    failed = {"id": 40, "position": 4, "method": "rmu", "suites": [_cell(None, None, None, None, None, None, None)] * 2}
    rows = [row(10, 1, "npo", 4, 10, 1), row(20, 2, "npo", 2, 6, 2), row(30, 3, "gradient_ascent", 5, 5, 0), failed]

    # when summarised
    summary = method_summary(rows)

    # then one line per method in order of first appearance: npo from #2 (mean ASR (0.2 + 0.3) / 2
    # beats (0.4 + 0.5) / 2), text successes and trials added over both suites, image from the
    # image suite, the parent's likewise, and the mean perplexity ratio; rmu has no figures
    assert summary == [
        {
            "method": "npo",
            "configuration": 20,
            "position": 2,
            "text_asr_before": {"value": 15 / 20, "successes": 15, "trials": 20},
            "text_asr_after": {"value": 5 / 20, "successes": 5, "trials": 20},
            "image_asr_before": {"value": 0.9, "successes": 9, "trials": 10},
            "image_asr_after": {"value": 0.3, "successes": 3, "trials": 10},
            "perplexity_ratio": 1.5,
        },
        {
            "method": "gradient_ascent",
            "configuration": 30,
            "position": 3,
            "text_asr_before": {"value": 15 / 20, "successes": 15, "trials": 20},
            "text_asr_after": {"value": 7 / 20, "successes": 7, "trials": 20},
            "image_asr_before": {"value": 0.9, "successes": 9, "trials": 10},
            "image_asr_after": {"value": 0.3, "successes": 3, "trials": 10},
            "perplexity_ratio": 1.5,
        },
        {
            "method": "rmu",
            "configuration": None,
            "position": None,
            "text_asr_before": None,
            "text_asr_after": None,
            "image_asr_before": None,
            "image_asr_after": None,
            "perplexity_ratio": None,
        },
    ]
