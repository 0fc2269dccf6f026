"""Verdicts that agree with humans, on the evaluations already stored.

Every finished evaluation's metrics, statistics, verdict, non-inferiority result and flipped
marks are recomputed from its stored per-case outcomes under the current rules: a non-answer
stays in the attack-success denominator and is a failure to help on a benign case, the
non-inferiority check covers failure to help on Tango's score interval, and the coverage rule
may make a verdict `inconclusive`. The stored outcomes are what the pinned judge said; the judge
pin is left as it is. Mean latencies move from `metrics` to `timings`, `over_refusal_margin`
in each evaluation's statistics settings becomes `failure_to_help_margin` (with the new coverage
settings at their defaults), and `report_sha256` is filled.

This migration imports the pure scoring code (evals.reporting, evals.metrics, evals.statistics)
instead of freezing a copy: its job is to make old reports read exactly as an evaluation run
today reads, and a frozen copy could drift from the live rules without a test noticing. The
cost: replaying it later on an old database uses the rules of that later day, and if those
functions are ever renamed this migration must be squashed or given a frozen copy then.

The utility check's per-text log-likelihoods were never stored, so its stored interval is kept
and judged again with the strict comparison (upper bound < margin); everything else is
recomputed. Reversing restores the old settings key and the latencies in `metrics`; the
recomputed reports stay.
"""

from dataclasses import asdict

from django.db import migrations, models

OLD_MARGIN, NEW_MARGIN = "over_refusal_margin", "failure_to_help_margin"


def _config(stored):
    from evals.statistics import StatisticsConfig

    stored = dict(stored or {})
    if OLD_MARGIN in stored:
        stored[NEW_MARGIN] = stored.pop(OLD_MARGIN)
    return StatisticsConfig(**{key: value for key, value in stored.items() if key in StatisticsConfig.__dataclass_fields__})


def _stored_utility_check(statistics, metrics, config):
    from evals.statistics import utility_non_inferiority, utility_check_from_interval

    stored = next((check for check in statistics.get("non_inferiority", []) if check.get("metric") == "perplexity_ratio"), None)
    perplexities = [((metrics.get(arm) or {}).get("utility") or {}).get("perplexity") for arm in ("A", "B")]
    if stored is None or stored.get("ci") is None or None in perplexities:
        return utility_non_inferiority(None, None, config)
    return utility_check_from_interval(perplexities[0], perplexities[1], stored["ci"], config)


def recompute_reports(apps, schema_editor):
    from evals.outcomes import flipped
    from evals.reporting import CaseRecord, report_content, report_scores, report_sha256

    Evaluation = apps.get_model("evals", "Evaluation")
    CaseResult = apps.get_model("evals", "CaseResult")
    evaluations = Evaluation.objects.select_related(
        "suite_version__suite",
        "checkpoint_a__model",
        "checkpoint_b__model",
        "prompt_version_a__prompt",
        "prompt_version_b__prompt",
        "utility_dataset_version__dataset",
    )
    # One evaluation at a time, by id: no cursor stays open across the writes.
    for pk in list(Evaluation.objects.order_by("pk").values_list("pk", flat=True)):
        evaluation = evaluations.get(pk=pk)
        config = _config(evaluation.statistics_config)
        evaluation.statistics_config = asdict(config)
        results = list(CaseResult.objects.filter(evaluation=evaluation).select_related("case").order_by("position"))
        if not evaluation.metrics or not results:
            evaluation.save(update_fields=["statistics_config"])
            continue
        records = [
            CaseRecord(r.case.key, r.case.category, r.case.attack_family, r.case.modality, r.case.expected, r.outcome_a, r.outcome_b, r.response_a, r.response_b) for r in results
        ]
        old_metrics = evaluation.metrics
        metrics, comparison = report_scores(
            records,
            config=config,
            utility_check=_stored_utility_check(evaluation.statistics or {}, old_metrics, config),
        )
        timings = {}
        for arm in ("A", "B"):
            old_arm = old_metrics.get(arm) or {}
            metrics[arm]["utility"] = old_arm.get("utility", metrics[arm]["utility"])
            latencies = [getattr(r, f"latency_ms_{arm.lower()}") for r in results]
            timings[arm] = {"mean_latency_ms": old_arm.get("mean_latency_ms", sum(latencies) / len(latencies))}
        statistics = comparison.as_dict()
        content = report_content(
            evaluation,
            records=records,
            metrics=metrics,
            statistics=statistics,
            verdict=comparison.verdict,
            passes_non_inferiority=comparison.passes_non_inferiority,
        )
        evaluation.metrics = metrics
        evaluation.statistics = statistics
        evaluation.verdict = comparison.verdict
        evaluation.passes_non_inferiority = comparison.passes_non_inferiority
        evaluation.timings = timings
        evaluation.report_sha256 = report_sha256(content)
        evaluation.save(
            update_fields=[
                "statistics_config",
                "metrics",
                "statistics",
                "verdict",
                "passes_non_inferiority",
                "timings",
                "report_sha256",
            ]
        )
        changed = []
        for result in results:
            now_flipped = flipped(result.case.expected, result.outcome_a, result.outcome_b)
            if now_flipped != result.flipped:
                result.flipped = now_flipped
                changed.append(result)
        CaseResult.objects.bulk_update(changed, ["flipped"], batch_size=500)


def restore_settings_key(apps, schema_editor):
    Evaluation = apps.get_model("evals", "Evaluation")
    for pk in list(Evaluation.objects.order_by("pk").values_list("pk", flat=True)):
        evaluation = Evaluation.objects.get(pk=pk)
        config = dict(evaluation.statistics_config or {})
        if NEW_MARGIN in config:
            config[OLD_MARGIN] = config.pop(NEW_MARGIN)
        for key in ("max_error_share", "min_harmful_cases", "min_benign_cases"):
            config.pop(key, None)
        evaluation.statistics_config = config
        for arm, timing in (evaluation.timings or {}).items():
            if arm in (evaluation.metrics or {}) and "mean_latency_ms" in timing:
                evaluation.metrics[arm]["mean_latency_ms"] = timing["mean_latency_ms"]
        evaluation.save(update_fields=["statistics_config", "metrics"])


class Migration(migrations.Migration):
    dependencies = [("evals", "0004_outcome_non_answer")]

    operations = [
        migrations.AddField("evaluation", "report_sha256", models.CharField(blank=True, max_length=64)),
        migrations.AddField("evaluation", "timings", models.JSONField(default=dict)),
        migrations.RunPython(recompute_reports, restore_settings_key),
    ]
