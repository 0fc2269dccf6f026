"""The search strategies' pure parts: the random draw, the objectives, Optuna's proposals."""

import random

import pytest

from sweeps.comparison import GridError, grid_expand
from sweeps.search import configuration_of, objectives_of, optuna_propose, random_sample

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
