"""Search strategies beyond the grid, without Django: a seeded random draw from the grid, and
multi-objective Optuna proposals over the same grid (each configuration entry's method, and one
categorical choice per grid name) and over an entry's ranges (a float or integer distribution
per name). Plain data in, plain data out.

The Optuna study lives in memory and is rebuilt, for every proposal, from the finished
configurations' parameters and objectives (the database rows are the record of truth, so any
worker can propose the next trial and nothing else has to be stored or migrated)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from sweeps.comparison import Configuration, GridError, grid_expand, range_is_int

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
    # The trial's Optuna parameters: {"entry": index, "<index>.<grid name>": index of the value,
    # "<index>.<range name>": the value drawn}.
    params: dict


def _range_distribution(spec: dict):
    from optuna.distributions import FloatDistribution, IntDistribution

    log = bool(spec.get("log", False))
    if range_is_int(spec):
        return IntDistribution(spec["low"], spec["high"], log=log, step=spec.get("step") or 1)
    return FloatDistribution(spec["low"], spec["high"], log=log, step=spec.get("step"))


def _space(entries: list[dict]):
    from optuna.distributions import CategoricalDistribution

    space = {"entry": CategoricalDistribution(list(range(len(entries))))}
    for index, entry in enumerate(entries):
        for name, values in (entry.get("grid") or {}).items():
            # Indices, not the values: a value may be a list or an object, which Optuna cannot hold.
            space[f"{index}.{name}"] = CategoricalDistribution(list(range(len(values))))
        for name, spec in (entry.get("ranges") or {}).items():
            space[f"{index}.{name}"] = _range_distribution(spec)
    return space


def configuration_of(entries: list[dict], params: dict) -> Configuration:
    index = params["entry"]
    entry = entries[index]
    grid = entry.get("grid") or {}
    hyperparameters = {
        **(entry.get("hyperparameters") or {}),
        **{name: values[params[f"{index}.{name}"]] for name, values in grid.items()},
        **{name: params[f"{index}.{name}"] for name in entry.get("ranges") or {}},
    }
    return Configuration(method=entry["method"], hyperparameters=hyperparameters, seed=(entry.get("seeds") or [0])[0])


def _range_values(spec: dict) -> range | None:
    """Every value of an integer range on its step; None for a float range (no end of them)."""
    if not range_is_int(spec):
        return None
    return range(spec["low"], spec["high"] + 1, spec.get("step") or 1)


def optuna_capacity(entries: list[dict]) -> int | None:
    """How many distinct configurations the optuna strategy can propose (an entry's grid points,
    its first seed only, times each integer range's values); None when a float range makes them
    endless."""
    total = 0
    for entry in entries:
        count = 1
        for values in (entry.get("grid") or {}).values():
            count *= len(values)
        for spec in (entry.get("ranges") or {}).values():
            values = _range_values(spec)
            if values is None:
                return None
            count *= len(values)
        total += count
    return total


def optuna_checked(entries: list[dict]) -> list[Configuration]:
    """What is validated before an optuna sweep starts: every grid point and seed, an entry with
    ranges once with every range at its low end and once at its high end (a proposal between them
    is validated again when it is proposed). ``entries`` are assumed checked by ``grid_expand``."""
    out = []
    for entry in entries:
        ranges = entry.get("ranges") or {}
        points = grid_expand([{key: value for key, value in entry.items() if key != "ranges"}])
        if not ranges:
            out.extend(points)
            continue
        for point in points:
            for end in ("low", "high"):
                bounds = {name: spec[end] if range_is_int(spec) else float(spec[end]) for name, spec in ranges.items()}
                out.append(Configuration(method=point.method, hyperparameters={**point.hyperparameters, **bounds}, seed=point.seed))
    return out


def _all_params(entries: list[dict], *, seed: int):
    """Every proposable parameter set in order (each integer range's values in turn); a float
    range takes a value drawn with ``seed`` instead, a fresh one for each."""
    draw = random.Random(seed)
    for index, entry in enumerate(entries):
        grid = entry.get("grid") or {}
        ranges = entry.get("ranges") or {}
        names = sorted(grid)  # sorted, as in optuna_propose: the stored request's key order varies
        integers = sorted(name for name, spec in ranges.items() if _range_values(spec) is not None)
        floats = sorted(name for name in ranges if name not in integers)
        for choice in itertools.product(*(range(len(grid[name])) for name in names)):
            for values in itertools.product(*(_range_values(ranges[name]) for name in integers)):
                params = {"entry": index, **{f"{index}.{name}": value for name, value in zip(names, choice, strict=True)}}
                params.update({f"{index}.{name}": value for name, value in zip(integers, values, strict=True)})
                params.update({f"{index}.{name}": _float_draw(draw, ranges[name]) for name in floats})
                yield params


def _float_draw(draw: random.Random, spec: dict) -> float:
    low, high = float(spec["low"]), float(spec["high"])
    if spec.get("log"):
        return math.exp(draw.uniform(math.log(low), math.log(high)))
    if spec.get("step"):
        return low + draw.randint(0, round((high - low) / spec["step"])) * spec["step"]
    return draw.uniform(low, high)


def optuna_propose(entries: list[dict], finished: list[tuple[dict, tuple | None]], *, taken: set[str], seed: int) -> Proposal | None:
    """The next configuration a multi-objective Optuna study (TPE, seeded with ``seed`` plus the
    number of finished trials) proposes, given ``finished``: (params, objectives or None for a
    failed trial) of every finished configuration. ``taken``: the groups already in the sweep
    (``Configuration.group``), never proposed again. None when every grid point is taken. A range
    name is suggested from its float or integer distribution, and a finished trial's drawn value
    is given back to the rebuilt study with that distribution."""
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
        # Names in sorted order, not the request's: the request is stored as JSON, and PostgreSQL's
        # jsonb gives its keys back in another order, which would change what the study draws.
        for name in sorted(entries[entry].get("grid") or {}):
            key = f"{entry}.{name}"
            params[key] = trial.suggest_categorical(key, space[key].choices)
        for name in sorted(entries[entry].get("ranges") or {}):
            key = f"{entry}.{name}"
            distribution = space[key]
            suggest = trial.suggest_int if isinstance(distribution, optuna.distributions.IntDistribution) else trial.suggest_float
            params[key] = suggest(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
        configuration = configuration_of(entries, params)
        if configuration.group not in taken:
            return Proposal(configuration=configuration, params=params)
        # A repeat tells the study nothing new: record it as failed so the next ask moves on.
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    for params in _all_params(entries, seed=seed + len(finished)):
        configuration = configuration_of(entries, params)
        if configuration.group not in taken:
            return Proposal(configuration=configuration, params=params)
    return None
