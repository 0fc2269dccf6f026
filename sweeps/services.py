"""Sweeps: start many unlearning configurations of one parent at once, and evaluate each child
against the parent on every suite as soon as it exists.

Nothing here runs anything itself: each configuration is an ordinary unlearning run (on whichever
executor the deployment has: in turn in-process, in parallel across Celery workers), and each
evaluation an ordinary evaluation. ``sweep_run_finished`` is a jobs run-finished listener
(``SweepsConfig.ready``) that moves a configuration on when its run or an evaluation finishes,
and the sweep to finished when every configuration has.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from jobs.models import RunKind, RunStatus
from sweeps.comparison import GridError, grid_expand
from sweeps.models import ConfigurationStatus, Sweep, SweepConfiguration, SweepStatus
from core.errors import LetheError, NotFound, ValidationFailed
from versions.models import Role
from versions.permissions import role_require

SWEEP_NAME_MAX = 200


def sweep_summary(sweep) -> dict:
    """The webhook and audit payload of a sweep."""
    counts = {status: 0 for status in ConfigurationStatus.values}
    for status in sweep.configurations.values_list("status", flat=True):
        counts[status] += 1
    return {
        "id": sweep.pk,
        "name": sweep.name,
        "status": sweep.status,
        "parent_checkpoint": {"model": sweep.parent_checkpoint.model.name, "number": sweep.parent_checkpoint.number},
        "configurations": counts,
        "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
    }


def sweep_create(
    *,
    parent_checkpoint,
    forget_dataset_version,
    configurations,
    suite_versions,
    actor,
    retain_dataset_version=None,
    utility_dataset_version=None,
    judge=None,
    judge_config=None,
    generation=None,
    statistics=None,
    evaluation_seed=0,
    name="",
) -> Sweep:
    """Expand ``configurations`` (see ``sweeps.comparison.grid_expand``) and queue one unlearning
    run per configuration, each following its own branch label ``sweep-<id>-<position>-<method>``.
    Every run is validated before anything is queued: one invalid configuration refuses the
    whole sweep (a configuration that fails at run time is recorded and the others go on)."""
    from evals.judges import judge_from_spec
    from evals.services import DEFAULT_JUDGE
    from jobs.webhooks import webhook_emit
    from unlearning.services import unlearning_run_create
    from versions.services import audit_record

    project = parent_checkpoint.model.project
    role_require(project=project, user=actor, role=Role.EDITOR)
    judge = judge or DEFAULT_JUDGE
    try:
        expanded = grid_expand(configurations)
    except GridError as error:
        raise ValidationFailed(str(error), fields={"configurations": [str(error)]}) from None
    suite_versions = list(suite_versions)
    if not suite_versions:
        raise ValidationFailed("A sweep needs at least one suite version to evaluate on.", fields={"suite_versions": ["Required."]})
    for suite_version in suite_versions:
        if suite_version.suite.project_id != project.pk:
            raise NotFound(f"Suite version {suite_version.pk} is not in {project.slug}.", fields={"suite_versions": ["Not found."]})
    if len({suite_version.pk for suite_version in suite_versions}) != len(suite_versions):
        raise ValidationFailed("A suite version is listed twice.", fields={"suite_versions": ["Repeated."]})
    try:
        judge_from_spec(judge, judge_config)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid judge: {exc}", fields={"judge": [str(exc)]}) from None
    for field, value in (("judge_config", judge_config), ("generation", generation), ("statistics", statistics)):
        if value is not None and not isinstance(value, dict):
            raise ValidationFailed(f"{field} must be an object.", fields={field: ["Expected an object."]})
    if isinstance(evaluation_seed, bool) or not isinstance(evaluation_seed, int):
        raise ValidationFailed("evaluation_seed must be an integer.", fields={"evaluation_seed": ["Expected an integer."]})
    if not isinstance(name, str) or len(name) > SWEEP_NAME_MAX:
        raise ValidationFailed(f"name is at most {SWEEP_NAME_MAX} characters.", fields={"name": ["Too long."]})

    with transaction.atomic():
        sweep = Sweep.objects.create(
            project=project, name=name, parent_checkpoint=parent_checkpoint, forget_dataset_version=forget_dataset_version,
            retain_dataset_version=retain_dataset_version, utility_dataset_version=utility_dataset_version,
            configurations_requested=configurations, judge=judge, judge_config=dict(judge_config or {}),
            generation=dict(generation or {}), statistics=dict(statistics or {}), evaluation_seed=evaluation_seed, created_by=actor,
        )
        sweep.suite_versions.set(suite_versions)
        rows = []
        for position, configuration in enumerate(expanded, start=1):
            branch_label = f"sweep-{sweep.pk}-{position}-{configuration.method}"[:100]
            try:
                unlearning_run = unlearning_run_create(
                    parent_checkpoint=parent_checkpoint, method=configuration.method, hyperparameters=configuration.hyperparameters,
                    forget_dataset_version=forget_dataset_version, retain_dataset_version=retain_dataset_version,
                    seed=configuration.seed, branch_label=branch_label, actor=actor,
                )
            except ValidationFailed as error:
                where = f"configuration {position} ({configuration.method}, seed {configuration.seed})"
                raise ValidationFailed(f"{where}: {error}",
                                       fields={f"configurations.{position}.{key}": value for key, value in (error.fields or {}).items()}) from None
            rows.append(SweepConfiguration(
                sweep=sweep, position=position, method=configuration.method, hyperparameters=configuration.hyperparameters,
                seed=configuration.seed, branch_label=branch_label, unlearning_run=unlearning_run,
            ))
        SweepConfiguration.objects.bulk_create(rows)
        audit_record(project=project, actor=actor, action="sweep.create", object_type="sweep", object_id=str(sweep.pk),
                     data={"parent_checkpoint": parent_checkpoint.pk, "configurations": len(rows),
                           "suite_versions": [suite_version.pk for suite_version in suite_versions]})
        webhook_emit(project=project, event="sweep.started", payload={"sweep": sweep_summary(sweep)})
    return sweep


def _sweep_locked(sweep_id) -> Sweep:
    # One finisher at a time per sweep: two workers finishing the last two configurations at
    # once must not both see the other still running (PostgreSQL's row lock; SQLite's IMMEDIATE
    # transactions serialise writers already).
    return Sweep.objects.select_for_update().get(pk=sweep_id)


def _configuration_set(configuration, *, status, error="") -> None:
    SweepConfiguration.objects.filter(pk=configuration.pk).update(status=status, error=error)
    configuration.status, configuration.error = status, error


def _evaluations_start(*, sweep, configuration, checkpoint) -> None:
    from evals.services import evaluation_create

    evaluations = []
    try:
        for suite_version in sweep.suite_versions.select_related("suite").order_by("id"):
            evaluations.append(evaluation_create(
                project=sweep.project, suite_version=suite_version, checkpoint_a=sweep.parent_checkpoint, checkpoint_b=checkpoint,
                actor=sweep.created_by, judge=sweep.judge, judge_config=sweep.judge_config or None, generation=sweep.generation or None,
                seed=sweep.evaluation_seed, utility_dataset_version=sweep.utility_dataset_version, statistics=sweep.statistics or None,
            ))
    except LetheError as error:
        configuration.evaluations.add(*evaluations)
        _configuration_set(configuration, status=ConfigurationStatus.FAILED, error=f"its evaluation could not start: {error}")
        return
    configuration.evaluations.add(*evaluations)
    _configuration_set(configuration, status=ConfigurationStatus.EVALUATING)


def _configuration_after_evaluation(configuration) -> None:
    if configuration.is_finished:
        return
    states = list(configuration.evaluations.order_by("id").values_list("pk", "run__status", "run__error"))
    for evaluation_id, status, error in states:
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            _configuration_set(configuration, status=ConfigurationStatus.FAILED, error=f"evaluation {evaluation_id} {status}: {error}")
            return
    if all(status == RunStatus.SUCCEEDED for _, status, _ in states):
        _configuration_set(configuration, status=ConfigurationStatus.SUCCEEDED)


def sweep_run_finished(*, run) -> None:
    """jobs run-finished listener: a configuration's unlearning run finished (start its
    evaluations, or record its failure) or one of its evaluations did; then the sweep finishes
    when every configuration has."""
    if run.kind == RunKind.UNLEARNING:
        configuration = SweepConfiguration.objects.filter(unlearning_run__run_id=run.pk).select_related("unlearning_run").first()
        if configuration is None:
            return
        sweep = _sweep_locked(configuration.sweep_id)
        if run.status == RunStatus.SUCCEEDED:
            from unlearning.models import UnlearningRun

            checkpoint = UnlearningRun.objects.select_related("produced_checkpoint").get(pk=configuration.unlearning_run_id).produced_checkpoint
            _evaluations_start(sweep=sweep, configuration=configuration, checkpoint=checkpoint)
        else:
            _configuration_set(configuration, status=ConfigurationStatus.FAILED, error=f"unlearning run {run.pk} {run.status}: {run.error}")
    elif run.kind == RunKind.EVALUATION:
        configuration = SweepConfiguration.objects.filter(evaluations__run_id=run.pk).first()
        if configuration is None:
            return
        sweep = _sweep_locked(configuration.sweep_id)
        _configuration_after_evaluation(configuration)
    else:
        return
    _sweep_finish_if_done(sweep)


def _sweep_finish_if_done(sweep) -> None:
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    if sweep.status != SweepStatus.RUNNING:
        return
    unfinished = sweep.configurations.exclude(status__in=(ConfigurationStatus.SUCCEEDED, ConfigurationStatus.FAILED))
    if unfinished.exists():
        return
    sweep.status, sweep.finished_at = SweepStatus.FINISHED, timezone.now()
    sweep.save(update_fields=["status", "finished_at"])
    summary = sweep_summary(sweep)
    audit_record(project=sweep.project, actor=None, action="sweep.finish", object_type="sweep", object_id=str(sweep.pk),
                 data={"configurations": summary["configurations"]})
    webhook_emit(project=sweep.project, event="sweep.finished", payload={"sweep": summary})
