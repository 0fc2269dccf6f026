"""The search strategies' pure parts: the random draw, the objectives, Optuna's proposals."""

import random

import pytest

from sweeps.comparison import Configuration, GridError, grid_expand
from sweeps.search import configuration_of, objectives_of, optuna_capacity, optuna_checked, optuna_propose, random_sample

ENTRIES = [
    {"method": "npo", "hyperparameters": {"max_steps": 2}, "grid": {"learning_rate": [0.001, 0.003], "beta": [0.1, 0.5]}, "seeds": [3]},
    {"method": "gradient_ascent", "hyperparameters": {"max_steps": 2}, "grid": {"learning_rate": [0.001, 0.003]}},
]


def test_the_random_strategy_draws_distinct_grid_points_reproducibly_from_its_seed():
    grid = grid_expand(ENTRIES)
    drawn = random_sample(grid, trials=3, seed=7)
    assert drawn == random.Random(7).sample(grid, 3)
    assert drawn == random_sample(grid, trials=3, seed=7)
    assert len({(c.group, c.seed) for c in drawn}) == 3
    with pytest.raises(GridError, match="trials is 7 but the grid has only 6 configuration"):
        random_sample(grid, trials=7, seed=0)


def test_the_objectives_are_attack_success_failure_to_help_and_utility_loss_averaged_over_suites():
    cells = [{"asr": 0.5, "failure_to_help": 0.25, "perplexity_ratio": 1.2}, {"asr": 0.1, "failure_to_help": None, "perplexity_ratio": None}]
    assert objectives_of(cells) == pytest.approx((0.3, 0.125, 0.1))
    assert objectives_of([{"asr": None, "failure_to_help": 0.0, "perplexity_ratio": 1.0}]) is None
    assert objectives_of([]) is None


def test_optuna_proposes_reproducibly_never_repeats_a_configuration_and_stops_when_the_grid_is_exhausted():
    first = optuna_propose(ENTRIES, [], taken=set(), seed=0)
    assert first == optuna_propose(ENTRIES, [], taken=set(), seed=0)
    assert configuration_of(ENTRIES, first.params) == first.configuration
    # the entry's first seed (0 when it lists none)
    assert first.configuration.seed == (3 if first.configuration.method == "npo" else 0)
    taken, finished = {first.configuration.group}, [(first.params, (0.5, 0.0, 0.1))]
    groups = [first.configuration.group]
    for _ in range(5):
        proposal = optuna_propose(ENTRIES, finished, taken=taken, seed=0)
        assert proposal.configuration.group not in taken
        taken.add(proposal.configuration.group)
        groups.append(proposal.configuration.group)
        finished.append((proposal.params, None))  # a failed trial teaches the study nothing but is not proposed again
    assert sorted(groups) == sorted({c.group for c in grid_expand(ENTRIES)})
    assert optuna_propose(ENTRIES, finished, taken=taken, seed=0) is None


RANGED = [
    {
        "method": "npo",
        "hyperparameters": {"batch_size": 4},
        "grid": {"beta": [0.1, 0.5]},
        "ranges": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "max_steps": {"low": 2, "high": 8, "step": 2}},
    },
    {"method": "gradient_ascent", "ranges": {"alpha": {"low": 0.0, "high": 1.0, "step": 0.25}}},
]


def _in_range(configuration):
    hyperparameters = configuration.hyperparameters
    if configuration.method == "npo":
        assert isinstance(hyperparameters["learning_rate"], float) and 1e-5 <= hyperparameters["learning_rate"] <= 1e-3
        assert isinstance(hyperparameters["max_steps"], int) and hyperparameters["max_steps"] in (2, 4, 6, 8)
        assert hyperparameters["beta"] in (0.1, 0.5) and hyperparameters["batch_size"] == 4
    else:
        assert isinstance(hyperparameters["alpha"], float) and hyperparameters["alpha"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_optuna_draws_range_values_within_their_range_reproducibly_and_learns_from_them():
    # when the study proposes over ranges: the same seed proposes the same configuration
    first = optuna_propose(RANGED, [], taken=set(), seed=3)
    assert first == optuna_propose(RANGED, [], taken=set(), seed=3)
    assert configuration_of(RANGED, first.params) == first.configuration
    index = first.params["entry"]
    # the range values are stored under "<entry index>.<name>" with the grid's indices
    expected_keys = {"entry", f"{index}.beta", f"{index}.learning_rate", f"{index}.max_steps"} if index == 0 else {"entry", f"{index}.alpha"}
    assert set(first.params) == expected_keys
    _in_range(first.configuration)

    # then a study rebuilt from finished trials (with their range values) proposes reproducibly, within range, never a repeat
    taken, finished = {first.configuration.group}, [(first.params, (0.4, 0.1, 0.2))]
    for step in range(8):
        proposal = optuna_propose(RANGED, finished, taken=taken, seed=3)
        assert proposal == optuna_propose(RANGED, finished, taken=set(taken), seed=3)
        assert proposal.configuration.group not in taken
        _in_range(proposal.configuration)
        taken.add(proposal.configuration.group)
        finished.append((proposal.params, (0.5 - step / 20, 0.1, 0.2) if step % 3 else None))
    assert {params["entry"] for params, _ in finished} == {0, 1}
    assert any(params.get("0.max_steps") != 2 for params, _ in finished if params["entry"] == 0)


def test_an_integer_range_is_exhausted_like_a_grid_and_counted():
    entries = [{"method": "npo", "ranges": {"max_steps": {"low": 2, "high": 6, "step": 2}}}]
    assert optuna_capacity(entries) == 3
    assert optuna_capacity(RANGED) is None  # a float range never runs out
    assert optuna_capacity([{"method": "npo", "grid": {"beta": [0.1, 0.5]}, "ranges": {"max_steps": {"low": 1, "high": 4}}}]) == 8
    taken, finished = set(), []
    while (proposal := optuna_propose(entries, finished, taken=taken, seed=1)) is not None:
        taken.add(proposal.configuration.group)
        finished.append((proposal.params, (0.1, 0.0, 0.0)))
    assert sorted(params["0.max_steps"] for params, _ in finished) == [2, 4, 6]


def test_an_optuna_sweep_is_validated_at_each_end_of_its_ranges():
    assert optuna_checked(RANGED) == [
        Configuration("npo", {"batch_size": 4, "beta": 0.1, "learning_rate": 1e-5, "max_steps": 2}, 0),
        Configuration("npo", {"batch_size": 4, "beta": 0.1, "learning_rate": 1e-3, "max_steps": 8}, 0),
        Configuration("npo", {"batch_size": 4, "beta": 0.5, "learning_rate": 1e-5, "max_steps": 2}, 0),
        Configuration("npo", {"batch_size": 4, "beta": 0.5, "learning_rate": 1e-3, "max_steps": 8}, 0),
        Configuration("gradient_ascent", {"alpha": 0.0}, 0),
        Configuration("gradient_ascent", {"alpha": 1.0}, 0),
    ]
    # and the grid is expanded without the ranged names
    assert [c.hyperparameters for c in grid_expand(RANGED, ranges=True)] == [{"batch_size": 4, "beta": 0.1}, {"batch_size": 4, "beta": 0.5}, {}]


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"learning_rate": {"low": 1e-3, "high": 1e-5}}, "configuration 1: ranges.learning_rate: low (0.001) must be below high (1e-05)."),
        ({"learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}, "configuration 1: ranges.learning_rate: a log range needs low > 0 (low is 0.0)."),
        ({"beta": {"low": 0.1, "high": 0.9}}, "configuration 1: ranges.beta: beta is both in ranges and fixed or on the grid; give it in one place."),
        ({"max_steps": {"low": 1, "high": 9}}, "configuration 1: ranges.max_steps: max_steps is both in ranges and fixed or on the grid; give it in one place."),
        ({"batch_size": {"low": 2, "high": 7, "step": 2}}, "configuration 1: ranges.batch_size: high - low (5) must be a multiple of step (2)."),
        ({"batch_size": {"low": 2, "high": 8, "step": 0.5}}, "configuration 1: ranges.batch_size: step must be a positive integer."),
        ({"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True, "step": 1e-5}}, "configuration 1: ranges.learning_rate: log and step cannot be combined; give one."),
        ({"learning_rate": {"low": "a", "high": 1e-3}}, "configuration 1: ranges.learning_rate needs low and high, both numbers."),
        ({"learning_rate": {"low": 1e-5, "high": 1e-3, "scale": "log"}}, "configuration 1: ranges.learning_rate has unknown field(s) scale."),
        ({"learning_rate": [1e-5, 1e-3]}, "configuration 1: ranges.learning_rate must be an object of {low, high, log, step}."),
    ],
)
def test_a_range_is_refused_with_a_message_naming_its_entry_and_name(ranges, message):
    entries = [{"method": "npo", "hyperparameters": {"max_steps": 2}, "grid": {"beta": [0.1, 0.5]}, "ranges": ranges}]
    with pytest.raises(GridError) as refused:
        grid_expand(entries, ranges=True)
    assert str(refused.value) == message


def test_ranges_need_the_optuna_strategy():
    with pytest.raises(GridError) as refused:
        grid_expand(RANGED)
    assert str(refused.value) == "configuration 1: ranges need the optuna strategy (grid and random choose among the grid's values)."


def test_optuna_proposes_the_same_whatever_the_key_order_of_the_stored_request():
    # given one request, and the same request with its grid and range names in another order (as
    # PostgreSQL's jsonb gives a stored request back: shorter keys first)
    entry = {
        "method": "npo",
        "hyperparameters": {"batch_size": 4},
        "grid": {"beta": [0.1, 0.5], "alpha": [0.5, 1.0]},
        "ranges": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "max_steps": {"low": 1, "high": 3}},
    }
    reordered = {
        **entry,
        "grid": {"alpha": [0.5, 1.0], "beta": [0.1, 0.5]},
        "ranges": {"max_steps": {"low": 1, "high": 3}, "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
    }

    # when each proposes its first trial and the next one after a finished trial
    first = optuna_propose([entry], [], taken=set(), seed=5)
    first_reordered = optuna_propose([reordered], [], taken=set(), seed=5)
    second = optuna_propose([entry], [(first.params, (0.5, 0.1, 0.0))], taken={first.configuration.group}, seed=5)
    second_reordered = optuna_propose([reordered], [(first.params, (0.5, 0.1, 0.0))], taken={first.configuration.group}, seed=5)

    # then both propose the same configurations
    assert (first_reordered.params, first_reordered.configuration) == (first.params, first.configuration)
    assert (second_reordered.params, second_reordered.configuration) == (second.params, second.configuration)
