"""Search strategies beyond the grid, without Django: a seeded random draw from the grid, and
multi-objective Optuna proposals over the same grid (each configuration entry's method, and one
categorical choice per grid name). Plain data in, plain data out.

The Optuna study lives in memory and is rebuilt, for every proposal, from the finished
configurations' parameters and objectives (the database rows are the record of truth, so any
worker can propose the next trial and nothing else has to be stored or migrated)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sweeps.comparison import Configuration, GridError

# Minimised, in this order: attack success, failure to help (over-refusal of benign requests),
# utility loss (held-out perplexity ratio child / parent minus 1; 0 without a utility set).
OBJECTIVES = ("attack_success", "failure_to_help", "utility_loss")
# How many times a proposal that repeats a configuration already in the sweep is asked again
# before the first configuration of the grid not yet tried is taken instead.
PROPOSAL_ATTEMPTS = 20


def random_sample(configurations: list[Configuration], *, trials: int, seed: int) -> list[Configuration]:
    """``trials`` distinct configurations of the grid, drawn with ``seed`` (the same seed draws the
    same ones, in the same order)."""
    if trials > len(configurations):
        raise GridError(f"trials is {trials} but the grid has only {len(configurations)} configuration(s).")
    return random.Random(seed).sample(configurations, trials)


def objectives_of(cells: list[dict]) -> tuple[float, float, float] | None:
    """The three objectives of one configuration from its per-suite figures ({"asr",
    "failure_to_help", "perplexity_ratio"}, each a number or None), averaged over the suites;
    None when a suite has no attack success (the trial counts as failed)."""
    if not cells or any(cell.get("asr") is None for cell in cells):
        return None

    def mean(values):
        return sum(values) / len(values)

    return (
        mean([cell["asr"] for cell in cells]),
        mean([cell.get("failure_to_help") or 0.0 for cell in cells]),
        mean([(cell["perplexity_ratio"] - 1.0) if cell.get("perplexity_ratio") is not None else 0.0 for cell in cells]),
    )


@dataclass(frozen=True)
class Proposal:
    configuration: Configuration
    params: dict  # {"entry": index, "<index>.<name>": index of the value}: the trial's Optuna parameters


def _space(entries: list[dict]):
    from optuna.distributions import CategoricalDistribution

    space = {"entry": CategoricalDistribution(list(range(len(entries))))}
    for index, entry in enumerate(entries):
        for name, values in (entry.get("grid") or {}).items():
            # Indices, not the values: a value may be a list or an object, which Optuna cannot hold.
            space[f"{index}.{name}"] = CategoricalDistribution(list(range(len(values))))
    return space


def configuration_of(entries: list[dict], params: dict) -> Configuration:
    index = params["entry"]
    entry = entries[index]
    grid = entry.get("grid") or {}
    hyperparameters = {**(entry.get("hyperparameters") or {}), **{name: values[params[f"{index}.{name}"]] for name, values in grid.items()}}
    return Configuration(method=entry["method"], hyperparameters=hyperparameters, seed=(entry.get("seeds") or [0])[0])


def _all_params(entries: list[dict]) -> list[dict]:
    import itertools

    out = []
    for index, entry in enumerate(entries):
        grid = entry.get("grid") or {}
        names = list(grid)
        for choice in itertools.product(*(range(len(grid[name])) for name in names)):
            out.append({"entry": index, **{f"{index}.{name}": value for name, value in zip(names, choice, strict=True)}})
    return out


def optuna_propose(entries: list[dict], finished: list[tuple[dict, tuple | None]], *, taken: set[str], seed: int) -> Proposal | None:
    """The next configuration a multi-objective Optuna study (TPE, seeded with ``seed`` plus the
    number of finished trials) proposes, given ``finished``: (params, objectives or None for a
    failed trial) of every finished configuration. ``taken``: the groups already in the sweep
    (``Configuration.group``), never proposed again. None when every grid point is taken."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = _space(entries)
    sampler = optuna.samplers.TPESampler(seed=seed + len(finished))
    study = optuna.create_study(directions=["minimize"] * len(OBJECTIVES), sampler=sampler)
    for params, values in finished:
        distributions = {name: space[name] for name in params}
        state = optuna.trial.TrialState.COMPLETE if values is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=list(values) if values else None, state=state))
    for _ in range(PROPOSAL_ATTEMPTS):
        trial = study.ask()
        entry = trial.suggest_categorical("entry", space["entry"].choices)
        params = {"entry": entry}
        for name in entries[entry].get("grid") or {}:
            key = f"{entry}.{name}"
            params[key] = trial.suggest_categorical(key, space[key].choices)
        configuration = configuration_of(entries, params)
        if configuration.group not in taken:
            return Proposal(configuration=configuration, params=params)
        # A repeat tells the study nothing new: record it as failed so the next ask moves on.
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    for params in _all_params(entries):
        configuration = configuration_of(entries, params)
        if configuration.group not in taken:
            return Proposal(configuration=configuration, params=params)
    return None
