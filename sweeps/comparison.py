"""What a sweep computes without Django: the grid a request expands into, the spread of a
figure across seeds, the best configuration per method, and the Pareto frontier of attack
success against failure to help. Plain data in, plain data out."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

MAX_CONFIGURATIONS = 200


class GridError(ValueError):
    """A sweep's configurations cannot be expanded; the message says which entry and why."""


@dataclass(frozen=True)
class Configuration:
    method: str
    hyperparameters: dict
    seed: int

    @property
    def group(self) -> str:
        """Method + hyperparameters: configurations that differ only by seed share it."""
        return group_key(self.method, self.hyperparameters)


def group_key(method: str, hyperparameters: dict) -> str:
    return f"{method} {json.dumps(hyperparameters, sort_keys=True, separators=(',', ':'))}"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def grid_expand(entries: list[dict], *, limit: int = MAX_CONFIGURATIONS, ranges: bool = False) -> list[Configuration]:
    """Expand ``[{"method", "hyperparameters": {fixed}, "grid": {name: [values]}, "seeds": [..]}]``
    into one configuration per grid point and seed, in request order: entries in turn, the grid's
    names in the order given (the last varies fastest), then seeds. A name is either fixed or on
    the grid, never both, so a hyperparameter whose value is itself a list stays unambiguous.

    With ``ranges`` (the optuna strategy) an entry may also carry ``"ranges": {name: {"low",
    "high", "log"?, "step"?}}``, checked here (see ``range_check``) and left out of the
    configurations returned: the study draws those names within their range."""
    if not isinstance(entries, list) or not entries:
        raise GridError("configurations must be a non-empty list of {method, hyperparameters, grid, seeds}.")
    expanded: list[Configuration] = []
    seen: set[tuple[str, int]] = set()
    for position, entry in enumerate(entries, start=1):
        where = f"configuration {position}"
        if not isinstance(entry, dict):
            raise GridError(f"{where} must be an object.")
        unknown = set(entry) - {"method", "hyperparameters", "grid", "seeds", "ranges"}
        if unknown:
            raise GridError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}.")
        method = entry.get("method")
        if not isinstance(method, str) or not method:
            raise GridError(f"{where} needs a method.")
        fixed = entry.get("hyperparameters") or {}
        grid = entry.get("grid") or {}
        seeds = entry.get("seeds", [0])
        if not isinstance(fixed, dict) or not isinstance(grid, dict):
            raise GridError(f"{where}: hyperparameters and grid must be objects.")
        for name, values in grid.items():
            if not isinstance(values, list) or not values:
                raise GridError(f"{where}: grid.{name} must be a non-empty list of values.")
            if len({json.dumps(value, sort_keys=True) for value in values}) != len(values):
                raise GridError(f"{where}: grid.{name} repeats a value.")
        both = sorted(set(fixed) & set(grid))
        if both:
            raise GridError(f"{where}: {', '.join(both)} is both fixed and on the grid; give it in one place.")
        if entry.get("ranges"):
            if not ranges:
                raise GridError(f"{where}: ranges need the optuna strategy (grid and random choose among the grid's values).")
            range_check(entry["ranges"], where=where, taken=set(fixed) | set(grid))
        if not isinstance(seeds, list) or not seeds or not all(_is_int(seed) and seed >= 0 for seed in seeds):
            raise GridError(f"{where}: seeds must be a non-empty list of non-negative integers.")
        if len(set(seeds)) != len(seeds):
            raise GridError(f"{where}: seeds repeat a value.")
        names = list(grid)
        for values in itertools.product(*(grid[name] for name in names)):
            hyperparameters = {**fixed, **dict(zip(names, values, strict=True))}
            for seed in seeds:
                configuration = Configuration(method=method, hyperparameters=hyperparameters, seed=seed)
                identity = (configuration.group, seed)
                if identity in seen:
                    raise GridError(f"{where} repeats {method} with {hyperparameters} and seed {seed}.")
                seen.add(identity)
                expanded.append(configuration)
                if len(expanded) > limit:
                    raise GridError(f"The sweep expands to more than {limit} configurations; split it.")
    return expanded


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def range_check(ranges, *, where: str, taken: set[str]) -> None:
    """An entry's ``ranges``: ``{name: {"low", "high", "log"?, "step"?}}``, an integer range when
    low and high are both integers (its step an integer dividing high - low), a float range
    otherwise; ``log`` draws on a log scale (low > 0, no step). A name in ``taken`` (fixed or on the
    grid) is refused: it is given in one place."""
    if not isinstance(ranges, dict):
        raise GridError(f"{where}: ranges must be an object of {{name: {{low, high, log, step}}}}.")
    for name, spec in ranges.items():
        at = f"{where}: ranges.{name}"
        if name in taken:
            raise GridError(f"{at}: {name} is both in ranges and fixed or on the grid; give it in one place.")
        if not isinstance(spec, dict):
            raise GridError(f"{at} must be an object of {{low, high, log, step}}.")
        unknown = set(spec) - {"low", "high", "log", "step"}
        if unknown:
            raise GridError(f"{at} has unknown field(s) {', '.join(sorted(unknown))}.")
        low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
        if not _is_number(low) or not _is_number(high):
            raise GridError(f"{at} needs low and high, both numbers.")
        if not low < high:
            raise GridError(f"{at}: low ({low}) must be below high ({high}).")
        if not isinstance(log, bool):
            raise GridError(f"{at}: log must be true or false.")
        if log and low <= 0:
            raise GridError(f"{at}: a log range needs low > 0 (low is {low}).")
        if step is None:
            continue
        if log:
            raise GridError(f"{at}: log and step cannot be combined; give one.")
        integer = _is_int(low) and _is_int(high)
        if not _is_number(step) or step <= 0 or (integer and not _is_int(step)):
            raise GridError(f"{at}: step must be a positive {'integer' if integer else 'number'}.")
        multiples = (high - low) / step
        if abs(multiples - round(multiples)) > 1e-8:
            raise GridError(f"{at}: high - low ({high - low}) must be a multiple of step ({step}).")


def range_is_int(spec: dict) -> bool:
    return _is_int(spec["low"]) and _is_int(spec["high"])


# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom; beyond, the normal's.
_T_975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def seed_spread(values: list[float | None]) -> dict:
    """Mean across seeds with a 95% t interval of the mean (None for fewer than two values).
    Missing values (a failed seed) are left out and counted apart."""
    present = [float(value) for value in values if value is not None]
    n = len(present)
    if not n:
        return {"mean": None, "ci": None, "n": 0, "missing": len(values)}
    mean = sum(present) / n
    ci = None
    if n >= 2:
        sd = math.sqrt(sum((value - mean) ** 2 for value in present) / (n - 1))
        quantile = _T_975[n - 2] if n - 1 <= len(_T_975) else 1.96
        half = quantile * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
    return {"mean": mean, "ci": ci, "n": n, "missing": len(values) - n}


def pareto_frontier(points: list[tuple[object, float | None, float | None]]) -> list[object]:
    """Ids of the points no other point beats on both axes (both minimised): (id, x, y) with x the
    attack success and y the failure to help. A point with a missing axis is never on it; equal
    points are both on it. Returned in order of x, then y, then input order."""
    usable = [(index, key, x, y) for index, (key, x, y) in enumerate(points) if x is not None and y is not None]
    frontier = []
    for index, key, x, y in usable:
        dominated = any(ox <= x and oy <= y and (ox < x or oy < y) for _, _, ox, oy in usable)
        if not dominated:
            frontier.append((x, y, index, key))
    return [key for _, _, _, key in sorted(frontier)]


def best_per_method(rows: list[dict]) -> dict[str, object]:
    """{method: id of its best row}: the lowest attack success, then the lowest failure to help,
    then the first in order; rows without an attack success are not ranked. Each row is
    {"id", "method", "asr", "failure_to_help"}."""
    best: dict[str, tuple] = {}
    for order, row in enumerate(rows):
        if row.get("asr") is None:
            continue
        failure = row.get("failure_to_help")
        rank = (row["asr"], math.inf if failure is None else failure, order)
        if row["method"] not in best or rank < best[row["method"]][0]:
            best[row["method"]] = (rank, row["id"])
    return {method: key for method, (_, key) in best.items()}


def _pooled(rates: list[dict | None]) -> dict | None:
    """{"value", "successes", "trials"} of the rates' successes and trials added up, or None."""
    present = [rate for rate in rates if rate is not None and rate.get("trials")]
    if not present:
        return None
    successes, trials = sum(rate["successes"] for rate in present), sum(rate["trials"] for rate in present)
    return {"value": successes / trials, "successes": successes, "trials": trials}


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def method_summary(rows: list[dict]) -> list[dict]:
    """The comparison in the shape of Chakraborty et al.'s table (EMNLP Findings 2024): one line
    per method, from its best configuration (the lowest attack success averaged over the suites,
    then the lowest failure to help; ``best_per_method``), with attack success on text attacks
    and on image attacks before unlearning (the parent, arm A of the same evaluations) and after
    (the child), each pooled over the suites by modality (successes and trials added), and the
    held-out perplexity ratio child/parent. A method none of whose configurations has figures is
    listed with ``configuration`` None. Rows are the sweep comparison's rows, in order."""
    averaged = [
        {
            "id": row["id"],
            "method": row["method"],
            "asr": _mean([(cell["asr"] or {}).get("value") for cell in row["suites"]]) if row["suites"] and all(cell["asr"] for cell in row["suites"]) else None,
            "failure_to_help": _mean([(cell["failure_to_help"] or {}).get("value") for cell in row["suites"]]),
        }
        for row in rows
    ]
    best = best_per_method(averaged)
    by_id = {row["id"]: row for row in rows}
    summary = []
    for method in dict.fromkeys(row["method"] for row in rows):
        row = by_id.get(best.get(method))
        cells = row["suites"] if row else []
        summary.append(
            {
                "method": method,
                "configuration": row["id"] if row else None,
                "position": row["position"] if row else None,
                "text_asr_before": _pooled([cell["asr_parent_text"] for cell in cells]),
                "text_asr_after": _pooled([cell["asr_text"] for cell in cells]),
                "image_asr_before": _pooled([cell["asr_parent_image"] for cell in cells]),
                "image_asr_after": _pooled([cell["asr_image"] for cell in cells]),
                "perplexity_ratio": _mean([cell["perplexity_ratio"] for cell in cells]),
            }
        )
    return summary


def weight_change_norm(weight_change: dict[str, float] | None) -> float | None:
    """The whole change's Frobenius norm from the per-module norms a run records."""
    if not weight_change:
        return None
    return math.sqrt(sum(float(value) ** 2 for value in weight_change.values()))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator
