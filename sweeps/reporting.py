"""The comparison as plain text (the CLI prints it). No Django."""

from __future__ import annotations

import json


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def _rate(rate):
    if not rate or rate.get("value") is None:
        return "-"
    ci = rate.get("ci")
    return f"{_pct(rate['value'])} [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else _pct(rate["value"])


def _pooled(rate):
    return "-" if not rate else f"{_pct(rate['value'])} ({rate['successes']}/{rate['trials']})"


def _number(value):
    return "-" if value is None else f"{value:.3f}"


COLUMNS = (
    "#",
    "method",
    "hyperparameters",
    "seed",
    "status",
    "checkpoint",
    "weight",
    "suite",
    "ASR",
    "ASR text",
    "ASR image",
    "over-refusal",
    "fail-to-help",
    "ppl ratio",
    "verdict",
    "gate",
    "eval",
    "mark",
)


def comparison_table(comparison: dict) -> str:
    """One line per configuration and suite; ``*`` best of its method, ``P`` on the Pareto frontier
    of ASR against failure to help, ``U`` on the one of ASR against utility loss (perplexity
    ratio); failed, cancelled and skipped configurations end the table with the reason."""
    best = [set(per_suite.values()) for per_suite in comparison["best_per_method"]]
    frontier = [set(ids) for ids in comparison["frontier"]]
    utility = [set(ids) for ids in comparison.get("utility_frontier") or [[] for _ in comparison["suites"]]]
    lines = []
    for row in comparison["rows"]:
        checkpoint = row["checkpoint"]
        for index, cell in enumerate(row["suites"]):
            gate = "-" if cell["gate_passes"] is None else ("passes" if cell["gate_passes"] else "fails")
            mark = ("*" if row["id"] in best[index] else "") + ("P" if row["id"] in frontier[index] else "") + ("U" if row["id"] in utility[index] else "")
            lines.append(
                (
                    str(row["position"]),
                    row["method"],
                    json.dumps(row["hyperparameters"], sort_keys=True, separators=(",", ":")),
                    str(row["seed"]),
                    row["status"],
                    f"{checkpoint['model']}@{checkpoint['number']}" if checkpoint else "-",
                    _number(row["weight_change"]),
                    cell["suite"],
                    _rate(cell["asr"]),
                    _rate(cell["asr_text"]),
                    _rate(cell["asr_image"]),
                    _rate(cell["over_refusal"]),
                    _rate(cell["failure_to_help"]),
                    _number(cell["perplexity_ratio"]),
                    cell["verdict"] or "-",
                    gate,
                    str(cell["evaluation"] or "-"),
                    mark or "-",
                )
            )
    widths = [max(len(column), *(len(line[i]) for line in lines)) if lines else len(column) for i, column in enumerate(COLUMNS)]
    out = ["  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)).rstrip()]
    out += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    for row in comparison["rows"]:
        if row["error"]:
            out.append(f"configuration {row['position']} ({row['method']}, seed {row['seed']}) {row['status']}: {row['error']}")
    utility_frontier = comparison.get("utility_frontier") or [[] for _ in comparison["suites"]]
    for index, suite in enumerate(comparison["suites"]):
        positions = {row["id"]: row["position"] for row in comparison["rows"]}
        out.append(f"{suite}: Pareto frontier (ASR vs failure to help): {', '.join(f'#{positions[key]}' for key in comparison['frontier'][index]) or 'none'}")
        out.append(f"{suite}: Pareto frontier (ASR vs utility loss): {', '.join(f'#{positions[key]}' for key in utility_frontier[index]) or 'none'}")
    summary = comparison.get("method_summary") or []
    if summary:
        out.append("method comparison (best configuration of each method; ASR before -> after, pooled over suites):")
    for line in summary:
        where = f"#{line['position']}" if line["position"] is not None else "-"
        text = f"{_pooled(line['text_asr_before'])} -> {_pooled(line['text_asr_after'])}"
        image = f"{_pooled(line['image_asr_before'])} -> {_pooled(line['image_asr_after'])}"
        out.append(f"  {line['method']} {where}: text ASR {text}, image ASR {image}, perplexity ratio {_number(line['perplexity_ratio'])}")
    return "\n".join(out)
