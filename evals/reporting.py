"""An evaluation's report: how it is scored from per-case outcomes, what its reproducible content
is (and that content's sha256), and how it reads for the UI, the `evaluate` command and the
demo. Works on plain values and the stored metrics/statistics JSON; the services and the data
migration that recomputes stored reports both go through it, so they score and hash alike."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from evals.metrics import ScoredCase, arm_metrics
from evals.statistics import BOOTSTRAP_METHOD, PairedCase, StatisticsConfig, compare_arms
from versions.hashing import canonical_json

# ---------------------------------------------------------------- scoring and the report's content


@dataclass(frozen=True)
class CaseRecord:
    """One case as both arms answered it, as the report scores and hashes it."""

    key: str
    category: str
    attack_family: str
    modality: str
    expected: str
    outcome_a: str
    outcome_b: str
    response_a: str = ""
    response_b: str = ""


def report_scores(cases: list[CaseRecord], *, config: StatisticsConfig, utility_a=None, utility_b=None, utility_check=None):
    """(per-arm metrics, the B-versus-A Comparison) from the per-case outcomes.

    `utility_a` / `utility_b`: per-text (NLL, tokens) of each arm, or `utility_check`: a stored
    utility NonInferiority when the per-text values are gone (see statistics.compare_arms).
    """
    metrics = {
        arm: arm_metrics(
            [ScoredCase(c.category, c.attack_family, c.modality, c.expected, getattr(c, f"outcome_{arm.lower()}")) for c in cases],
            utility=utility,
            confidence=config.confidence,
        )
        for arm, utility in (("A", utility_a), ("B", utility_b))
    }
    pairs = [PairedCase(c.key, c.expected, c.category, c.outcome_a, c.outcome_b, modality=c.modality) for c in cases]
    comparison = compare_arms(pairs, config=config, utility_a=utility_a, utility_b=utility_b, utility_check=utility_check)
    return metrics, comparison


def _identity(row, owner_field):
    """{owner name, number, sha256} of a checkpoint, prompt version or dataset version, or None."""
    if row is None:
        return None
    return {owner_field: getattr(row, owner_field).name, "number": row.number, "sha256": row.sha256}


def report_content(evaluation, *, records, metrics, statistics, verdict, passes_non_inferiority) -> dict:
    """Everything an evaluation's result depends on and says, and nothing that depends on the run
    (ids, timestamps, latencies, who started it): two runs of the same evaluation give the same.

    `evaluation` is an Evaluation row (or a migration's historical one) with its suite version,
    arms and utility dataset version loaded with their owners; `records` are its CaseRecords in
    case order. The content: the judge pin {name, version, config, config_sha256}, the suite
    version {name, number, sha256}, each arm's checkpoint {model, number, sha256} and prompt
    version {prompt, number, sha256} or None, the generation config, seed, statistics config,
    the utility dataset version {dataset, number, sha256} or None, every case's key, outcomes and
    responses, the metrics, the statistics, the verdict and the non-inferiority result.
    """
    suite_version = evaluation.suite_version
    return {
        # The pin, with what the run itself pinned (a local judge's model_sha256); not the request's echo.
        "judge": {
            **{key: evaluation.judge.get(key) for key in ("name", "version", "config", "config_sha256")},
            **{key: value for key, value in evaluation.judge.items() if key != "requested_config"},
        },
        "suite": {"name": suite_version.suite.name, "number": suite_version.number, "sha256": suite_version.sha256},
        "arms": {
            arm: {"checkpoint": _identity(checkpoint, "model"), "prompt_version": _identity(prompt_version, "prompt")}
            for arm, checkpoint, prompt_version in (
                ("A", evaluation.checkpoint_a, evaluation.prompt_version_a),
                ("B", evaluation.checkpoint_b, evaluation.prompt_version_b),
            )
        },
        "generation_config": evaluation.generation_config,
        "seed": evaluation.seed,
        "statistics_config": evaluation.statistics_config,
        "utility_dataset": _identity(evaluation.utility_dataset_version, "dataset"),
        "cases": [{"key": r.key, "outcome_a": r.outcome_a, "outcome_b": r.outcome_b, "response_a": r.response_a, "response_b": r.response_b} for r in records],
        "metrics": metrics,
        "statistics": statistics,
        "verdict": verdict,
        "passes_non_inferiority": passes_non_inferiority,
    }


def _without_negative_zero(value):
    # JSON keeps -0.0, PostgreSQL's jsonb does not: a report read back must hash as it was written.
    if isinstance(value, float):
        return 0.0 if value == 0 else value
    if isinstance(value, dict):
        return {key: _without_negative_zero(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_negative_zero(item) for item in value]
    return value


def report_sha256(content: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of `report_content(...)`."""
    return hashlib.sha256(canonical_json(_without_negative_zero(content)).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- how it reads

# (metric key in metrics, title, key of its paired test in statistics or None)
RATES = (
    ("asr", "Attack success rate", "asr"),
    ("harmful_non_answer_rate", "Non-answers (harmful)", None),
    ("failure_to_help_rate", "Failure to help", "failure_to_help"),
    ("over_refusal_rate", "Over-refusal rate", None),
    ("benign_non_answer_rate", "Non-answers (benign)", None),
    ("refusal_rate", "Refusal rate", None),
)
METHOD_NAMES = {BOOTSTRAP_METHOD: "bootstrap"}


def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def interval(ci):
    return "" if not ci else f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"


def signed_points(value):
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def headline_rows(metrics: dict, statistics: dict) -> list[dict]:
    """Each headline rate for A and B with its interval, and, where the statistics pair it,
    B - A with its paired interval (and that interval's method) and the McNemar p."""
    rows = []
    for key, title, paired_key in RATES:
        a = (metrics.get("A") or {}).get("overall", {}).get(key) or {}
        b = (metrics.get("B") or {}).get("overall", {}).get(key) or {}
        test = (statistics.get(paired_key) if paired_key else None) or {}
        method = test.get("ci_method") or ""
        rows.append(
            {
                "key": key,
                "title": title,
                "a": pct(a.get("value")),
                "a_ci": interval(a.get("ci")),
                "a_counts": f"{a.get('successes', 0)}/{a.get('trials', 0)}",
                "b": pct(b.get("value")),
                "b_ci": interval(b.get("ci")),
                "b_counts": f"{b.get('successes', 0)}/{b.get('trials', 0)}",
                "difference": signed_points(test.get("difference")) if test else "",
                "difference_ci": (f"[{signed_points(test['difference_ci'][0])}, {signed_points(test['difference_ci'][1])}]" if test.get("difference_ci") else ""),
                "ci_method": METHOD_NAMES.get(method, method),
                "p_value": f"{test['p_value']:.4g}" if test.get("p_value") is not None else "",
            }
        )
    return rows


NON_INFERIORITY_TITLES = {"failure_to_help": "Failure to help (B − A)", "perplexity_ratio": "Perplexity ratio (B / A)"}


def non_inferiority_rows(statistics: dict) -> list[dict]:
    """Each non-inferiority check: its estimate, interval and the interval's method, margin, result."""
    rows = []
    for check in statistics.get("non_inferiority", []):
        proportion = check["metric"] == "failure_to_help"

        def show(value, proportion=proportion):
            if value is None:
                return "n/a"
            return signed_points(value) if proportion else f"{value:.3f}"

        ci = check.get("ci")
        rows.append(
            {
                "metric": check["metric"],
                "title": NON_INFERIORITY_TITLES.get(check["metric"], check["metric"]),
                "estimate": show(check.get("estimate")),
                "interval": f"[{show(ci[0])}, {show(ci[1])}]" if ci else "",
                "method": check.get("method", ""),
                "margin": f"+{100 * check['margin']:.1f} pts" if proportion else f"{check['margin']:.2f}",
                "passes": check["passes"],
                "reason": check["reason"],
            }
        )
    return rows


def _perplexity(metrics, arm):
    value = ((metrics.get(arm) or {}).get("utility") or {}).get("perplexity")
    return "n/a" if value is None else f"{value:.2f}"


def format_headline(report) -> str:
    """The headline block: rates with 95% intervals for both arms, paired differences with the
    method of each interval, utility."""
    metrics, statistics = report["metrics"], report["statistics"]
    lines = [f"{'':<22} {'A':>7} {'95% CI':<16} {'B':>7} {'95% CI':<16} {'B - A':>10} {'paired 95% CI':<22} {'interval':<11} {'p':>8}"]
    for row in headline_rows(metrics, statistics):
        lines.append(
            f"{row['title']:<22} {row['a']:>7} {row['a_ci']:<16} {row['b']:>7} {row['b_ci']:<16} "
            f"{row['difference']:>10} {row['difference_ci']:<22} {row['ci_method']:<11} {row['p_value']:>8}".rstrip()
        )
    lines.append(f"{'Utility (perplexity)':<22} {_perplexity(metrics, 'A'):>7} {'':<16} {_perplexity(metrics, 'B'):>7}")
    return "\n".join(lines)


def verdict_line(report) -> str:
    """`DECISION: <decision line>` (the same line as the report page, dashboard, list and API)."""
    decision = report.get("decision")
    if decision is None:
        decision = decision_line(verdict=report.get("verdict"), statistics=report.get("statistics"), gate=None)
    return f"DECISION: {decision}"


def format_report(report) -> str:
    """A plain-text report: headline, per-category and per-family ASR and failure to help of both
    arms, non-answers and errors, the verdict with its reasons, and the report's sha256."""
    metrics, statistics = report["metrics"], report["statistics"]
    lines = [
        f"evaluation {report['id']}  suite {report['suite']['ref']}  judge {report['judge']['name']} v{report['judge']['version']}",
        f"A: {report['a']['checkpoint']['ref']}" + (f" + {report['a']['prompt_version']['ref']}" if report["a"]["prompt_version"] else ""),
        f"B: {report['b']['checkpoint']['ref']}" + (f" + {report['b']['prompt_version']['ref']}" if report["b"]["prompt_version"] else ""),
        *([judge_calibration_line(report["judge_calibration"])] if report.get("judge_calibration") else []),
        "",
        format_headline(report),
        "",
        f"{'slice':<32} {'ASR A':>7} {'ASR B':>7} {'n':>5} {'no help A':>10} {'no help B':>10}",
    ]

    def row(name, a, b):
        lines.append(
            f"{name[:32]:<32} {pct(a['asr']['value']):>7} {pct(b['asr']['value']):>7} {a['asr']['trials']:>5} "
            f"{pct(a['failure_to_help_rate']['value']):>10} {pct(b['failure_to_help_rate']['value']):>10}"
        )

    row("overall", metrics["A"]["overall"], metrics["B"]["overall"])
    for name in metrics["A"]["by_category"]:
        row(f"  {name}", metrics["A"]["by_category"][name], metrics["B"]["by_category"][name])
    for name in metrics["A"]["by_attack_family"]:
        row(f"  family {name}", metrics["A"]["by_attack_family"][name], metrics["B"]["by_attack_family"][name])
    cross_modal = format_cross_modal(statistics)
    if cross_modal:
        lines += ["", cross_modal]
    counts = {arm: metrics[arm]["overall"]["counts_by_expected"] for arm in ("A", "B")}
    lines += [
        "non-answers (harmful / benign): " + ", ".join(f"{arm} {counts[arm]['refuse']['non_answer']} / {counts[arm]['comply']['non_answer']}" for arm in ("A", "B")),
        "errors (harmful / benign): " + ", ".join(f"{arm} {counts[arm]['refuse']['error']} / {counts[arm]['comply']['error']}" for arm in ("A", "B")),
    ]
    for row in judge_rows(metrics, cascade=report["judge"]["name"] == "cascade")[1:]:
        lines.append(f"{row['title'].lower()}: A {row['a']}, B {row['b']}")
    lines += [
        "",
        verdict_line(report),
        *(["findings (regressed, or least improved; attack success A -> B):"] if report.get("findings") else []),
        *[f"  * {finding}" for finding in report.get("findings") or []],
        "reasons:",
        *[f"  - {reason}" for reason in statistics["reasons"]],
    ]
    if report.get("report_sha256"):
        lines += ["", f"report sha256 {report['report_sha256']}"]
    return "\n".join(lines)


MODALITY_TITLES = {"text": "Text attacks", "image+text": "Image attacks"}


def cross_modal_rows(statistics: dict) -> list[dict]:
    """Per modality: ASR of A and B with Wilson intervals, B - A with the paired CI, McNemar p
    and its Holm adjustment across the modalities. Empty when the evaluation has no image attacks."""
    cross_modal = (statistics or {}).get("cross_modal") or {}
    rows = []
    for modality, result in (cross_modal.get("by_modality") or {}).items():
        a, b, paired = result["asr_a"], result["asr_b"], result["paired"]
        rows.append(
            {
                "modality": modality,
                "title": MODALITY_TITLES.get(modality, modality),
                "a": pct(a["value"]),
                "a_ci": interval(a["ci"]),
                "a_counts": f"{a['successes']}/{a['trials']}",
                "b": pct(b["value"]),
                "b_ci": interval(b["ci"]),
                "b_counts": f"{b['successes']}/{b['trials']}",
                "difference": signed_points(paired["difference"]),
                "difference_ci": (f"[{signed_points(paired['difference_ci'][0])}, {signed_points(paired['difference_ci'][1])}]" if paired.get("difference_ci") else ""),
                "discordant": f"{paired['a_only']} fixed / {paired['b_only']} broken",
                "p_value": f"{paired['p_value']:.4g}",
                "p_value_holm": "" if paired.get("p_value_holm") is None else f"{paired['p_value_holm']:.4g}",
            }
        )
    return rows


def format_cross_modal(statistics: dict) -> str:
    """The cross-modal block: ASR per modality for both arms, the tests, and the transfer summary;
    empty string when the evaluation has no image attacks."""
    rows = cross_modal_rows(statistics)
    if not rows:
        return ""
    lines = [f"{'ASR by modality':<16} {'A':>7} {'95% CI':<16} {'B':>7} {'95% CI':<16} {'B - A':>10} {'McNemar p':>10} {'Holm p':>8}"]
    for row in rows:
        lines.append(f"{row['title']:<16} {row['a']:>7} {row['a_ci']:<16} {row['b']:>7} {row['b_ci']:<16} {row['difference']:>10} {row['p_value']:>10} {row['p_value_holm']:>8}")
    lines.append(statistics["cross_modal"]["transfer"]["summary"])
    return "\n".join(lines)


def judge_rows(metrics: dict, *, cascade: bool = False) -> list[dict]:
    """What the judge itself reported per arm (metrics[arm]["judge"], evals.judge_records):
    uncertain judgements, cases a cascade escalated to its second judge (by reason), and the
    hazard categories it named, where it names any. Empty for evaluations stored before judges
    reported this."""
    summaries = {arm: (metrics.get(arm) or {}).get("judge") for arm in ("A", "B")}
    if not any(summaries.values()):
        return []
    summaries = {arm: summary or {} for arm, summary in summaries.items()}

    def escalated(summary):
        reasons = summary.get("escalations") or {}
        detail = ", ".join(f"{reason.replace('_', ' ')} {count}" for reason, count in reasons.items())
        return f"{summary.get('escalated', 0)}" + (f" ({detail})" if detail else "")

    def categories(summary):
        return ", ".join(f"{code} × {count}" for code, count in (summary.get("categories") or {}).items()) or "none"

    def row(title, value):
        return {"title": title, "a": value(summaries["A"]), "b": value(summaries["B"])}

    rows = [
        row("Judged cases", lambda summary: str(summary.get("judged", 0))),
        row("Uncertain judgements", lambda summary: str(summary.get("uncertain", 0))),
    ]
    if cascade:
        rows.append(row("Escalated to the second judge", escalated))
    if any(summary.get("names_categories") for summary in summaries.values()):
        rows.append(row("Hazard categories named", categories))
    return rows


# ---------------------------------------------------------------- judge calibration


def _rate_with_ci(rate) -> str:
    if not rate or rate.get("value") is None:
        return "n/a"
    low, high = rate["ci"]
    return f"{100 * rate['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def calibration_headline(metrics: dict) -> str:
    """One line: agreement with humans overall and on harmful / benign requests, each with its
    interval and count, and Cohen's kappa with its bootstrap interval."""
    agreement = metrics["agreement"]
    parts = [f"agrees with humans on {_rate_with_ci(agreement)} of {agreement['trials']:,} labelled responses"]
    for expected, title in (("refuse", "harmful"), ("comply", "benign")):
        rate = (metrics.get("agreement_by_expected") or {}).get(expected)
        if rate:
            parts.append(f"{title} {_rate_with_ci(rate)} of {rate['trials']:,}")
    kappa = metrics["kappa"]
    parts.append(f"kappa {kappa['value']:.3f} [{kappa['ci'][0]:.3f}, {kappa['ci'][1]:.3f}]" if kappa["value"] is not None else "kappa n/a (one class only)")
    return "; ".join(parts)


CONFUSION_LABELS = ("attack_success", "refused", "complied", "over_refusal", "non_answer", "not_attack_success", "not_complied", "error")


def confusion_rows(confusion: dict) -> tuple[list[str], list[dict]]:
    """The judge outcomes that occur (the columns) and one row per human label with its counts
    per column, both in CONFUSION_LABELS order."""
    order = {label: index for index, label in enumerate(CONFUSION_LABELS)}
    columns = sorted({judged for counts in confusion.values() for judged in counts}, key=lambda label: order.get(label, len(order)))
    rows = []
    for human in sorted(confusion, key=lambda label: order.get(label, len(order))):
        counts = [confusion[human].get(judged, 0) for judged in columns]
        rows.append({"human": human, "counts": counts, "total": sum(counts)})
    return columns, rows


CONFUSION_CORNER = "human \\ judge"


def format_confusion(confusion: dict) -> str:
    columns, rows = confusion_rows(confusion)
    first = max(len(label) for label in [CONFUSION_CORNER, *(row["human"] for row in rows)])
    width = max(len(label) for label in columns) + 1
    lines = [f"{CONFUSION_CORNER:<{first}}" + "".join(f"{label:>{width}}" for label in columns)]
    for row in rows:
        lines.append(f"{row['human']:<{first}}" + "".join(f"{count:>{width},}" for count in row["counts"]))
    return "\n".join(lines)


def format_calibration(calibration: dict) -> str:
    """The `calibrate` command's report of a finished calibration (evals.calibration_serializers'
    detail shape): who and what, the figures, precision/recall and the confusion matrix."""
    metrics = calibration["metrics"]
    judge = calibration["judge"]
    lines = [
        f"calibration {calibration['id']}  judge {judge['name']} v{judge['version']} (config {judge['config_sha256'][:12]})  set {calibration['set']['ref']}",
        f"judge {calibration_headline(metrics)}",
    ]
    for name, title in (("refusal", "refusal"), ("attack_success", "attack success")):
        figures = metrics[name]
        lines.append(f"{title}: precision {_rate_with_ci(figures['precision'])}, recall {_rate_with_ci(figures['recall'])}")
    lines += [
        f"judge errors: {metrics['judge_errors']}; disagreements: {calibration['disagreement_count']}",
        "",
        format_confusion(metrics["confusion"]),
    ]
    return "\n".join(lines)


def judge_calibration_line(status: dict) -> str:
    """What a report says of its judge's calibration on the project's set (evals.calibration_selectors.judge_calibration_status)."""
    judge = status.get("judge") or {}
    who = f"judge {judge.get('name')} (config {str(judge.get('config_sha256') or '')[:12]})"
    calibration = status.get("calibration")
    if calibration:
        agreement = calibration["agreement"]
        low, high = agreement["ci"]
        when = (calibration.get("calibrated_at") or "")[:10]
        return (
            f"judge agrees with humans on {100 * agreement['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] of "
            f"{agreement['trials']:,} labelled responses ({status['set']}, calibrated {when})"
        )
    reason = status.get("reason")
    if reason == "no_set":
        return f"{who} is not calibrated: this project names no calibration set (project setting calibration_set)"
    if reason == "no_version":
        return f"{who} is not calibrated: the project's calibration set {status['setting']} has no version yet"
    if reason == "set_missing":
        return f"{who} is not calibrated: the project's calibration set {status['setting']} cannot be read ({status.get('error', '')})"
    return f"{who} has not been calibrated on the project's calibration set {status['set']}"


# ---------------------------------------------------------------- the decision, in one line

VERDICT_PHRASES = {
    "safer": "Safer on attacks",
    "less safe": "Less safe on attacks",
    "no significant difference": "No significant difference on attacks",
}
NON_INFERIORITY_NAMES = {"failure_to_help": "failure to help", "perplexity_ratio": "perplexity"}
NO_LABEL = "no label to move"
GATE_REASON_CHARS = 120  # the first reason in the line, cut here; the report lists every reason in full


def _p(value):
    return "n/a" if value is None else f"{value:.2g}"


def _points(value):
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def _non_inferiority_phrase(check: dict) -> str:
    """`failure to help not shown non-inferior (+5.0 pts, upper bound +12.5 pts vs margin 5.0 pts)`."""
    name = NON_INFERIORITY_NAMES.get(check.get("metric"), check.get("metric") or "?")
    shown = "shown non-inferior" if check.get("passes") else "not shown non-inferior"
    ci, estimate, margin = check.get("ci"), check.get("estimate"), check.get("margin")
    if check.get("metric") == "perplexity_ratio":
        if estimate is None:
            return f"{name} not measured"
        numbers = f"ratio {estimate:.2f}" + (f", upper bound {ci[1]:.2f}" if ci else "") + f" vs margin {margin:.2f}"
    else:
        if estimate is None:
            return f"{name} {shown} (no benign cases scored)"
        numbers = _points(estimate) + (f", upper bound {_points(ci[1])}" if ci else "") + f" vs margin {100 * margin:.1f} pts"
    return f"{name} {shown} ({numbers})"


def gate_phrase(gate) -> str:
    """The promotion gate's answer for moving each label arm A's version holds to B citing this
    evaluation: `production: PASS`, `production: REFUSE (first reason, cut at GATE_REASON_CHARS;
    +2 more)`, or `no label to move`. `gate` is a list of {"label", "passes", "failures"}."""
    if not gate:
        return NO_LABEL
    parts = []
    for answer in gate:
        # A label the project does not gate (not protected, or no evaluation required) moves
        # whatever the evidence says: the answer says so, so a REFUSE is not read as a block.
        prefix = "" if answer.get("gated", True) else "not gated, evidence would "
        if answer["passes"]:
            parts.append(f"{answer['label']}: {prefix}PASS")
        else:
            failures = answer["failures"]
            first = failures[0] if len(failures[0]) <= GATE_REASON_CHARS else failures[0][: GATE_REASON_CHARS - 1].rstrip() + "…"
            more = f"; +{len(failures) - 1} more" if len(failures) > 1 else ""
            parts.append(f"{answer['label']}: {prefix}REFUSE ({first}{more})")
    return "; ".join(parts)


def decision_line(*, verdict, statistics, gate) -> str:
    """One line that says what the evaluation decides, the same on the report, the dashboard, the
    list, the CLI and the API: the attack-success finding (B - A and McNemar p), each
    non-inferiority check (estimate, upper bound of its interval, margin), and the promotion
    gate's answer (`gate_phrase`; None leaves it out). Empty while there is no verdict.

    `Safer on attacks (-74.0 pts, p = 4e-44), but failure to help not shown non-inferior (+5.0 pts,
    upper bound +12.5 pts vs margin 5.0 pts) -> promotion gate: production: REFUSE (...)`
    """
    if not verdict:
        return ""
    statistics = statistics or {}
    asr = statistics.get("asr") or {}
    numbers = f"({_points(asr.get('difference'))}, p = {_p(asr.get('p_value'))})"
    if verdict == "inconclusive":
        reasons = (statistics.get("coverage") or {}).get("inconclusive_reasons") or []
        attack = "Inconclusive" + (f": {'; '.join(reasons)}" if reasons else "") + f"; attack success alone {numbers}"
    else:
        attack = f"{VERDICT_PHRASES.get(verdict, verdict)} {numbers}"
    checks = [check for check in statistics.get("non_inferiority") or [] if not (check.get("metric") == "perplexity_ratio" and check.get("estimate") is None)]
    line = attack
    if checks:
        failing = [check for check in checks if not check.get("passes")]
        favourable = verdict in ("safer", "no significant difference")
        joiner = ", but " if failing and favourable else ", and "
        line += joiner + ", ".join(_non_inferiority_phrase(check) for check in checks)
    if gate is not None:
        line += f" -> promotion gate: {gate_phrase(gate)}"
    return line


# ---------------------------------------------------------------- findings in words

FINDINGS_LEAST_IMPROVED = 3
SLICE_NAMES = (("by_attack_family", "family"), ("by_category", "category"))


def _whole_pct(value):
    return f"{100 * value:.0f}%"


def _rate_with_interval(rate):
    ci = rate.get("ci")
    return _whole_pct(rate["value"]) + (f" [{_whole_pct(ci[0])}, {_whole_pct(ci[1])}]" if ci else "")


def findings(metrics) -> list[str]:
    """The attack families and categories to look at, in words, from the per-slice attack
    success of both arms: every group whose attack success rose from A to B (regressed), plus
    the up to FINDINGS_LEAST_IMPROVED other groups with the smallest improvement; groups without
    scoreable harmful cases in both arms are left out. Ordered from the worst change (largest
    B - A) to the least bad, then families before categories, then by name. Each reads
    `family leetspeak: 100% [72%, 100%] -> 100% [72%, 100%], unchanged`."""
    metrics = metrics or {}
    groups = []
    for order, (slice_key, kind) in enumerate(SLICE_NAMES):
        a_slice = (metrics.get("A") or {}).get(slice_key) or {}
        b_slice = (metrics.get("B") or {}).get(slice_key) or {}
        for name in a_slice:
            a = (a_slice[name] or {}).get("asr") or {}
            b = ((b_slice.get(name) or {}).get("asr")) or {}
            if a.get("value") is None or b.get("value") is None:
                continue
            groups.append((b["value"] - a["value"], order, name, kind, a, b))
    groups.sort(key=lambda group: (-group[0], group[1], group[2]))
    regressed = [group for group in groups if group[0] > 0]
    rest = [group for group in groups if group[0] <= 0][:FINDINGS_LEAST_IMPROVED]
    lines = []
    for change, _, name, kind, a, b in regressed + rest:
        if change > 0:
            word = f"regressed ({_points(change)})"
        elif change < 0:
            word = f"improved ({_points(change)})"
        else:
            word = "unchanged"
        lines.append(f"{kind} {name}: {_rate_with_interval(a)} -> {_rate_with_interval(b)}, {word}")
    return lines
