"""Reads for sweeps: the list, one sweep, and the comparison a team decides from (one row per
configuration, the spread across seeds, the best configuration per method, the Pareto frontier).
A fixed number of queries whatever the number of configurations."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q

from sweeps.comparison import best_per_method, group_key, method_summary, pareto_frontier, ratio, seed_spread, weight_change_norm
from sweeps.models import ConfigurationStatus, Sweep, SweepConfiguration
from core.errors import NotFound

# The label a sweep row's gate answer is asked for: promoting the child over its parent.
GATE_LABEL = "production"
IMAGE_MODALITY = "image+text"
TEXT_MODALITY = "text"


def sweeps_for_project(*, project):
    return (
        Sweep.objects.filter(project=project)
        .select_related("parent_checkpoint__model", "created_by")
        .annotate(
            configuration_count=Count("configurations"),
            succeeded_count=Count("configurations", filter=Q(configurations__status=ConfigurationStatus.SUCCEEDED)),
            failed_count=Count("configurations", filter=Q(configurations__status=ConfigurationStatus.FAILED)),
        )
        .order_by("-id")
    )


def sweep_get(*, project, sweep_id) -> Sweep:
    from evals.models import SuiteVersion

    sweep = (
        sweeps_for_project(project=project)
        .select_related("forget_dataset_version__dataset", "retain_dataset_version__dataset", "utility_dataset_version__dataset", "project")
        .prefetch_related(Prefetch("suite_versions", queryset=SuiteVersion.objects.select_related("suite").order_by("id")))
        .filter(pk=sweep_id)
        .first()
    )
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} not found in {project.slug}.")
    return sweep


def _rate(metrics, arm, key, modality=None):
    """(value, ci, successes, trials) of a rate in an evaluation's metrics, or None."""
    scope = (metrics or {}).get(arm) or {}
    scope = scope.get("overall") if modality is None else (scope.get("by_modality") or {}).get(modality)
    rate = (scope or {}).get(key)
    if not rate or rate.get("trials", 0) == 0:
        return None
    return {"value": rate["value"], "ci": rate["ci"], "successes": rate["successes"], "trials": rate["trials"]}


def _perplexity(metrics, arm):
    return (((metrics or {}).get(arm) or {}).get("utility") or {}).get("perplexity")


def _suite_cell(*, project, sweep, configuration, evaluation, suite_version, counts) -> dict:
    from evals.gate import promotion_gate_check

    cell = {
        "suite_version": suite_version.pk,
        "suite": f"{suite_version.suite.name}@{suite_version.number}",
        "evaluation": None,
        "status": None,
        "verdict": "",
        "passes_non_inferiority": None,
        "asr": None,
        "asr_parent": None,
        "asr_text": None,
        "asr_image": None,
        "asr_parent_text": None,
        "asr_parent_image": None,
        "transfer_ratio": None,
        "over_refusal": None,
        "failure_to_help": None,
        "harmful_non_answer": None,
        "benign_non_answer": None,
        "perplexity_ratio": None,
        "gate_passes": None,
        "gate_failures": [],
    }
    if evaluation is None:
        return cell
    metrics = evaluation.metrics
    cell.update(evaluation=evaluation.pk, status=evaluation.run.status, verdict=evaluation.verdict, passes_non_inferiority=evaluation.passes_non_inferiority)
    if evaluation.run.status != "succeeded":
        return cell
    text, image = _rate(metrics, "B", "asr", TEXT_MODALITY), _rate(metrics, "B", "asr", IMAGE_MODALITY)
    parent = _rate(metrics, "A", "asr")
    cell.update(
        asr=_rate(metrics, "B", "asr"),
        asr_parent=parent["value"] if parent else None,
        asr_text=text,
        asr_image=image,
        asr_parent_text=_rate(metrics, "A", "asr", TEXT_MODALITY),
        asr_parent_image=_rate(metrics, "A", "asr", IMAGE_MODALITY),
        # How much of the text attacks' success carries over to image attacks (Chakraborty et al.).
        transfer_ratio=ratio(image["value"], text["value"]) if text and image else None,
        over_refusal=_rate(metrics, "B", "over_refusal_rate"),
        failure_to_help=_rate(metrics, "B", "failure_to_help_rate"),
        harmful_non_answer=_rate(metrics, "B", "harmful_non_answer_rate"),
        benign_non_answer=_rate(metrics, "B", "benign_non_answer_rate"),
        perplexity_ratio=ratio(_perplexity(metrics, "B"), _perplexity(metrics, "A")),
    )
    failures = promotion_gate_check(
        project=project,
        label_name=GATE_LABEL,
        current=sweep.parent_checkpoint,
        target=evaluation.checkpoint_b,
        evaluation=evaluation,
        evidence_counts=counts[evaluation.pk],
    )
    cell.update(gate_passes=not failures, gate_failures=failures)
    return cell


def _value(rate):
    return None if rate is None else rate["value"]


def sweep_comparison(*, sweep) -> dict:
    """``{"suites", "rows", "groups", "best_per_method", "frontier"}`` of a sweep loaded by
    ``sweep_get``. A row per configuration holds its checkpoint, weight change and one cell per
    suite (the child's figures from that suite's evaluation, B = child, A = parent); groups hold
    the spread across seeds of each method + hyperparameters; best and frontier are per suite."""
    from evals.gate import evaluations_evidence_counts
    from evals.models import Evaluation

    project = sweep.project
    suite_versions = list(sweep.suite_versions.all())
    configurations = list(
        SweepConfiguration.objects.filter(sweep=sweep)
        .select_related("unlearning_run__run", "unlearning_run__produced_checkpoint__model")
        .prefetch_related(
            Prefetch(
                "evaluations",
                queryset=Evaluation.objects.select_related("run", "suite_version__suite", "checkpoint_b__model").order_by("id"),
            )
        )
        .order_by("position")
    )
    evaluation_ids = [evaluation.pk for configuration in configurations for evaluation in configuration.evaluations.all()]
    counts = evaluations_evidence_counts(evaluation_ids=evaluation_ids) if evaluation_ids else {}
    rows = []
    for configuration in configurations:
        unlearning_run = configuration.unlearning_run
        checkpoint = unlearning_run.produced_checkpoint if unlearning_run else None
        by_suite = {evaluation.suite_version_id: evaluation for evaluation in configuration.evaluations.all()}
        rows.append(
            {
                "id": configuration.pk,
                "position": configuration.position,
                "method": configuration.method,
                "hyperparameters": configuration.hyperparameters,
                "seed": configuration.seed,
                "group": group_key(configuration.method, configuration.hyperparameters),
                "status": configuration.status,
                "error": configuration.error,
                "planned_steps": configuration.planned_steps,
                "branch_label": configuration.branch_label,
                "unlearning_run": unlearning_run.pk if unlearning_run else None,
                "run": unlearning_run.run_id if unlearning_run else None,
                "run_status": unlearning_run.run.status if unlearning_run else None,
                "checkpoint": None if checkpoint is None else {"id": checkpoint.pk, "model": checkpoint.model.name, "number": checkpoint.number},
                "weight_change": weight_change_norm(checkpoint.weight_change if checkpoint else None),
                "suites": [
                    _suite_cell(project=project, sweep=sweep, configuration=configuration, evaluation=by_suite.get(suite_version.pk), suite_version=suite_version, counts=counts)
                    for suite_version in suite_versions
                ],
            }
        )
    frontier = [
        pareto_frontier([(row["id"], _value(row["suites"][index]["asr"]), _value(row["suites"][index]["failure_to_help"])) for row in rows]) for index in range(len(suite_versions))
    ]
    # Utility loss: the held-out perplexity ratio child / parent (lower is better, as for ASR).
    utility_frontier = [
        pareto_frontier([(row["id"], _value(row["suites"][index]["asr"]), row["suites"][index]["perplexity_ratio"]) for row in rows]) for index in range(len(suite_versions))
    ]
    for row in rows:
        for index, cell in enumerate(row["suites"]):
            cell["on_frontier"] = row["id"] in frontier[index]
            cell["on_utility_frontier"] = row["id"] in utility_frontier[index]
    return {
        "suites": [f"{suite_version.suite.name}@{suite_version.number}" for suite_version in suite_versions],
        "rows": rows,
        "groups": _groups(rows, [f"{suite_version.suite.name}@{suite_version.number}" for suite_version in suite_versions]),
        "best_per_method": [_best(rows, index) for index in range(len(suite_versions))],
        "frontier": frontier,
        "utility_frontier": utility_frontier,
        "method_summary": method_summary(rows),
    }


def configuration_objectives(configuration) -> tuple | None:
    """The Optuna objectives of a finished configuration (sweeps.search.objectives_of) from its
    evaluations' metrics (B = the child, A = the parent); None when one did not succeed."""
    from sweeps.search import objectives_of

    cells = []
    for evaluation in configuration.evaluations.select_related("run").order_by("id"):
        if evaluation.run.status != "succeeded":
            return None
        metrics = evaluation.metrics
        asr, failure = _rate(metrics, "B", "asr"), _rate(metrics, "B", "failure_to_help_rate")
        cells.append({"asr": _value(asr), "failure_to_help": _value(failure), "perplexity_ratio": ratio(_perplexity(metrics, "B"), _perplexity(metrics, "A"))})
    return objectives_of(cells)


def _best(rows, index):
    return best_per_method(
        [{"id": row["id"], "method": row["method"], "asr": _value(row["suites"][index]["asr"]), "failure_to_help": _value(row["suites"][index]["failure_to_help"])} for row in rows]
    )


def _groups(rows, suites):
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(
            row["group"], {"group": row["group"], "method": row["method"], "hyperparameters": row["hyperparameters"], "configurations": [], "seeds": [], "_rows": []}
        )
        group["configurations"].append(row["id"])
        group["seeds"].append(row["seed"])
        group["_rows"].append(row)
    result = []
    for group in groups.values():
        members = group.pop("_rows")
        group["suites"] = [
            {
                "suite": suite,
                "asr": seed_spread([_value(member["suites"][index]["asr"]) for member in members]),
                "failure_to_help": seed_spread([_value(member["suites"][index]["failure_to_help"]) for member in members]),
                "perplexity_ratio": seed_spread([member["suites"][index]["perplexity_ratio"] for member in members]),
            }
            for index, suite in enumerate(suites)
        ]
        group["weight_change"] = seed_spread([member["weight_change"] for member in members])
        result.append(group)
    return result


def sweep_configurations_for_runs(*, unlearning_run_ids) -> dict:
    """The sweep configurations that started the given unlearning runs, for a model's lineage graph:
    ``{"sweeps": {sweep_id: {id, name, status, parent_checkpoint_id, configuration_count,
    succeeded_count, failed_count}}, "by_run": {unlearning_run_id: {sweep_id, position,
    branch_label, status}}}``. Two queries whatever the number of sweeps and configurations (none
    when no run is given, one when no run belongs to a sweep)."""
    unlearning_run_ids = list(unlearning_run_ids)
    if not unlearning_run_ids:
        return {"sweeps": {}, "by_run": {}}
    configurations = SweepConfiguration.objects.filter(unlearning_run_id__in=unlearning_run_ids).order_by("sweep_id", "position")
    by_run = {row.pop("unlearning_run_id"): row for row in configurations.values("unlearning_run_id", "sweep_id", "position", "branch_label", "status")}
    sweep_ids = {row["sweep_id"] for row in by_run.values()}
    if not sweep_ids:
        return {"sweeps": {}, "by_run": {}}
    sweeps = (
        Sweep.objects.filter(pk__in=sweep_ids)
        .annotate(
            configuration_count=Count("configurations"),
            succeeded_count=Count("configurations", filter=Q(configurations__status=ConfigurationStatus.SUCCEEDED)),
            failed_count=Count("configurations", filter=Q(configurations__status=ConfigurationStatus.FAILED)),
        )
        .order_by("id")
        .values("id", "name", "status", "parent_checkpoint_id", "configuration_count", "succeeded_count", "failed_count")
    )
    return {"sweeps": {row["id"]: row for row in sweeps}, "by_run": by_run}


def sweep_configuration_for_checkpoint(*, checkpoint) -> SweepConfiguration | None:
    """The sweep configuration whose unlearning run produced ``checkpoint`` (with its sweep), or
    None: one query."""
    return SweepConfiguration.objects.filter(unlearning_run__produced_checkpoint=checkpoint).select_related("sweep").first()
