"""How an evaluation's report reads, for the UI, the `evaluate` command and the demo: headline
rates of both arms with their intervals, B - A with its paired interval and p-value, utility,
and the verdict with its reasons. Plain module: works on the stored metrics/statistics JSON."""

RATES = (("asr", "Attack success rate"), ("over_refusal_rate", "Over-refusal rate"), ("refusal_rate", "Refusal rate"))


def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def interval(ci):
    return "" if not ci else f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"


def signed_points(value):
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def headline_rows(metrics: dict, statistics: dict) -> list[dict]:
    """Each headline rate for A and B with its interval, and B - A with the paired CI and p."""
    paired = {"asr": statistics.get("asr"), "over_refusal_rate": statistics.get("over_refusal")}
    rows = []
    for key, title in RATES:
        a = (metrics.get("A") or {}).get("overall", {}).get(key) or {}
        b = (metrics.get("B") or {}).get("overall", {}).get(key) or {}
        test = paired.get(key) or {}
        rows.append({
            "title": title,
            "a": pct(a.get("value")), "a_ci": interval(a.get("ci")), "a_counts": f"{a.get('successes', 0)}/{a.get('trials', 0)}",
            "b": pct(b.get("value")), "b_ci": interval(b.get("ci")), "b_counts": f"{b.get('successes', 0)}/{b.get('trials', 0)}",
            "difference": signed_points(test.get("difference")) if test else "",
            "difference_ci": (f"[{signed_points(test['difference_ci'][0])}, {signed_points(test['difference_ci'][1])}]"
                              if test.get("difference_ci") else ""),
            "p_value": f"{test['p_value']:.4g}" if test.get("p_value") is not None else "",
        })
    return rows


def _perplexity(metrics, arm):
    value = ((metrics.get(arm) or {}).get("utility") or {}).get("perplexity")
    return "n/a" if value is None else f"{value:.2f}"


def format_headline(report) -> str:
    """The headline block: rates with 95% intervals for both arms, paired differences, utility."""
    metrics, statistics = report["metrics"], report["statistics"]
    lines = [f"{'':<20} {'A':>7} {'95% CI':<16} {'B':>7} {'95% CI':<16} {'B - A':>10} {'paired 95% CI':<22} {'p':>8}"]
    for row in headline_rows(metrics, statistics):
        lines.append(
            f"{row['title']:<20} {row['a']:>7} {row['a_ci']:<16} {row['b']:>7} {row['b_ci']:<16} "
            f"{row['difference']:>10} {row['difference_ci']:<22} {row['p_value']:>8}"
        )
    lines.append(f"{'Utility (perplexity)':<20} {_perplexity(metrics, 'A'):>7} {'':<16} {_perplexity(metrics, 'B'):>7}")
    return "\n".join(lines)


def format_report(report) -> str:
    """A plain-text report: headline, per-category and per-family ASR of both arms, verdict."""
    metrics, statistics = report["metrics"], report["statistics"]
    lines = [
        f"evaluation {report['id']}  suite {report['suite']['ref']}  judge {report['judge']['name']} v{report['judge']['version']}",
        f"A: {report['a']['checkpoint']['ref']}" + (f" + {report['a']['prompt_version']['ref']}" if report["a"]["prompt_version"] else ""),
        f"B: {report['b']['checkpoint']['ref']}" + (f" + {report['b']['prompt_version']['ref']}" if report["b"]["prompt_version"] else ""),
        *([judge_calibration_line(report["judge_calibration"])] if report.get("judge_calibration") else []),
        "",
        format_headline(report),
        "",
        f"{'slice':<32} {'ASR A':>7} {'ASR B':>7} {'n':>5} {'over-ref A':>11} {'over-ref B':>11}",
    ]

    def row(name, a, b):
        lines.append(
            f"{name[:32]:<32} {pct(a['asr']['value']):>7} {pct(b['asr']['value']):>7} {a['asr']['trials']:>5} "
            f"{pct(a['over_refusal_rate']['value']):>11} {pct(b['over_refusal_rate']['value']):>11}"
        )

    row("overall", metrics["A"]["overall"], metrics["B"]["overall"])
    for name in metrics["A"]["by_category"]:
        row(f"  {name}", metrics["A"]["by_category"][name], metrics["B"]["by_category"][name])
    for name in metrics["A"]["by_attack_family"]:
        row(f"  family {name}", metrics["A"]["by_attack_family"][name], metrics["B"]["by_attack_family"][name])
    counts_a, counts_b = metrics["A"]["overall"]["counts"], metrics["B"]["overall"]["counts"]
    cross_modal = format_cross_modal(statistics)
    if cross_modal:
        lines += ["", cross_modal]
    lines += [
        f"non-answers / errors: A {counts_a['non_answer']}/{counts_a['error']}, B {counts_b['non_answer']}/{counts_b['error']}",
        "",
        f"VERDICT: B is {report['verdict']} (non-inferiority {'passed' if report['passes_non_inferiority'] else 'FAILED'})",
        *[f"  - {reason}" for reason in statistics["reasons"]],
    ]
    return "\n".join(lines)


MODALITY_TITLES = {"text": "Text attacks", "image+text": "Image attacks"}


def cross_modal_rows(statistics: dict) -> list[dict]:
    """Per modality: ASR of A and B with Wilson intervals, B - A with the paired CI, McNemar p
    and its Holm adjustment across the modalities. Empty when the evaluation has no image attacks."""
    cross_modal = (statistics or {}).get("cross_modal") or {}
    rows = []
    for modality, result in (cross_modal.get("by_modality") or {}).items():
        a, b, paired = result["asr_a"], result["asr_b"], result["paired"]
        rows.append({
            "modality": modality, "title": MODALITY_TITLES.get(modality, modality),
            "a": pct(a["value"]), "a_ci": interval(a["ci"]), "a_counts": f"{a['successes']}/{a['trials']}",
            "b": pct(b["value"]), "b_ci": interval(b["ci"]), "b_counts": f"{b['successes']}/{b['trials']}",
            "difference": signed_points(paired["difference"]),
            "difference_ci": (f"[{signed_points(paired['difference_ci'][0])}, {signed_points(paired['difference_ci'][1])}]"
                              if paired.get("difference_ci") else ""),
            "discordant": f"{paired['a_only']} fixed / {paired['b_only']} broken",
            "p_value": f"{paired['p_value']:.4g}",
            "p_value_holm": "" if paired.get("p_value_holm") is None else f"{paired['p_value_holm']:.4g}",
        })
    return rows


def format_cross_modal(statistics: dict) -> str:
    """The cross-modal block: ASR per modality for both arms, the tests, and the transfer summary;
    empty string when the evaluation has no image attacks."""
    rows = cross_modal_rows(statistics)
    if not rows:
        return ""
    lines = [f"{'ASR by modality':<16} {'A':>7} {'95% CI':<16} {'B':>7} {'95% CI':<16} {'B - A':>10} {'McNemar p':>10} {'Holm p':>8}"]
    for row in rows:
        lines.append(
            f"{row['title']:<16} {row['a']:>7} {row['a_ci']:<16} {row['b']:>7} {row['b_ci']:<16} "
            f"{row['difference']:>10} {row['p_value']:>10} {row['p_value_holm']:>8}"
        )
    lines.append(statistics["cross_modal"]["transfer"]["summary"])
    return "\n".join(lines)


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
    parts.append(
        f"kappa {kappa['value']:.3f} [{kappa['ci'][0]:.3f}, {kappa['ci'][1]:.3f}]" if kappa["value"] is not None
        else "kappa n/a (one class only)"
    )
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
        f"calibration {calibration['id']}  judge {judge['name']} v{judge['version']} (config {judge['config_sha256'][:12]})  "
        f"set {calibration['set']['ref']}",
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
        return (f"judge agrees with humans on {100 * agreement['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] of "
                f"{agreement['trials']:,} labelled responses ({status['set']}, calibrated {when})")
    reason = status.get("reason")
    if reason == "no_set":
        return f"{who} is not calibrated: this project names no calibration set (project setting calibration_set)"
    if reason == "no_version":
        return f"{who} is not calibrated: the project's calibration set {status['setting']} has no version yet"
    if reason == "set_missing":
        return f"{who} is not calibrated: the project's calibration set {status['setting']} cannot be read ({status.get('error', '')})"
    return f"{who} has not been calibrated on the project's calibration set {status['set']}"
