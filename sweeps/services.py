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
from sweeps.comparison import Configuration, GridError, grid_expand, group_key
from sweeps.models import FINISHED_CONFIGURATION_STATUSES, ConfigurationStatus, Sweep, SweepConfiguration, SweepStatus, SweepStrategy
from sweeps.search import optuna_capacity, optuna_checked, optuna_propose, random_sample
from core.errors import Conflict, LetheError, NotFound, ValidationFailed
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


def _positive_or_none(field, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed(f"{field} must be a positive integer.", fields={field: ["Expected a positive integer."]})
    return value


class _ValidatedOnly(Exception):
    """Rolls back the run a validation created."""


def _configuration_validate(*, configuration, sweep_inputs, actor, where, field_prefix="configurations") -> int:
    """Everything ``unlearning_run_create`` checks, and nothing kept: the run it creates is rolled
    back (its queueing with it, since that waits for the commit). Returns the resolved max_steps."""
    from unlearning.services import unlearning_run_create

    planned = {}
    try:
        with transaction.atomic():
            unlearning_run = unlearning_run_create(
                method=configuration.method,
                hyperparameters=configuration.hyperparameters,
                seed=configuration.seed,
                actor=actor,
                **sweep_inputs,
            )
            planned["steps"] = unlearning_run.hyperparameters["max_steps"]
            raise _ValidatedOnly
    except _ValidatedOnly:
        return planned["steps"]
    except ValidationFailed as error:
        raise ValidationFailed(
            f"{where} ({configuration.method}, seed {configuration.seed}): {error}", fields={f"{field_prefix}.{key}": value for key, value in (error.fields or {}).items()}
        ) from None


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
    strategy=SweepStrategy.GRID,
    trials=None,
    strategy_seed=0,
    parallelism=None,
    budget_steps=None,
    budget_seconds=None,
) -> Sweep:
    """Expand ``configurations`` (see ``sweeps.comparison.grid_expand``) into the sweep's
    configurations: all of them (grid), ``trials`` drawn with ``strategy_seed`` (random), or
    ``trials`` proposed one after another by a multi-objective Optuna study (optuna). Each runs on
    its own branch label ``sweep-<id>-<position>-<method>``, at most ``parallelism`` at once; one
    not started when a budget (``budget_steps`` training steps, ``budget_seconds`` wall time) is
    spent is skipped. Every configuration the sweep may run is validated before anything is
    queued: one invalid configuration refuses the whole sweep (one that fails at run time is
    recorded and the others go on)."""
    from evals.judges import judge_from_spec
    from evals.judges import DEFAULT_JUDGE
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    project = parent_checkpoint.model.project
    role_require(project=project, user=actor, role=Role.EDITOR)
    judge = judge or DEFAULT_JUDGE
    if strategy not in SweepStrategy.values:
        raise ValidationFailed(f"strategy must be one of {', '.join(SweepStrategy.values)}.", fields={"strategy": ["Unknown strategy."]})
    trials = _positive_or_none("trials", trials)
    parallelism = _positive_or_none("parallelism", parallelism)
    budget_steps = _positive_or_none("budget_steps", budget_steps)
    budget_seconds = _positive_or_none("budget_seconds", budget_seconds)
    if strategy == SweepStrategy.GRID and trials is not None:
        raise ValidationFailed("trials is for the random and optuna strategies; a grid runs every configuration.", fields={"trials": ["Not for grid."]})
    if strategy != SweepStrategy.GRID and trials is None:
        raise ValidationFailed(f"The {strategy} strategy needs trials (how many configurations).", fields={"trials": ["Required."]})
    if isinstance(strategy_seed, bool) or not isinstance(strategy_seed, int):
        raise ValidationFailed("strategy_seed must be an integer.", fields={"strategy_seed": ["Expected an integer."]})
    try:
        # Ranges (drawn, not chosen from a list) are for optuna only; grid_expand refuses them otherwise.
        expanded = grid_expand(configurations, ranges=strategy == SweepStrategy.OPTUNA)
        planned = random_sample(expanded, trials=trials, seed=strategy_seed) if strategy == SweepStrategy.RANDOM else expanded
    except GridError as error:
        raise ValidationFailed(str(error), fields={"configurations": [str(error)]}) from None
    capacity = optuna_capacity(configurations) if strategy == SweepStrategy.OPTUNA else None
    if capacity is not None and trials > capacity:
        message = f"trials is {trials} but the grid has only {capacity} configuration(s)."
        raise ValidationFailed(message, fields={"trials": [message]})
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

    sweep_inputs = {"parent_checkpoint": parent_checkpoint, "forget_dataset_version": forget_dataset_version, "retain_dataset_version": retain_dataset_version}
    # optuna may propose any point of the grid: every one is checked now (a range at both ends).
    checked = optuna_checked(configurations) if strategy == SweepStrategy.OPTUNA else planned
    steps = {}
    for position, configuration in enumerate(checked, start=1):
        steps[(configuration.group, configuration.seed)] = _configuration_validate(
            configuration=configuration, sweep_inputs=sweep_inputs, actor=actor, where=f"configuration {position}", field_prefix=f"configurations.{position}"
        )

    with transaction.atomic():
        sweep = Sweep.objects.create(
            project=project,
            name=name,
            parent_checkpoint=parent_checkpoint,
            forget_dataset_version=forget_dataset_version,
            retain_dataset_version=retain_dataset_version,
            utility_dataset_version=utility_dataset_version,
            configurations_requested=configurations,
            judge=judge,
            judge_config=dict(judge_config or {}),
            generation=dict(generation or {}),
            statistics=dict(statistics or {}),
            evaluation_seed=evaluation_seed,
            created_by=actor,
            strategy=strategy,
            trials=trials,
            strategy_seed=strategy_seed,
            parallelism=parallelism,
            budget_steps=budget_steps,
            budget_seconds=budget_seconds,
            started_at=timezone.now(),
        )
        sweep.suite_versions.set(suite_versions)
        rows = []
        if strategy != SweepStrategy.OPTUNA:
            for position, configuration in enumerate(planned, start=1):
                rows.append(_configuration_row(sweep=sweep, position=position, configuration=configuration, planned_steps=steps[(configuration.group, configuration.seed)]))
            SweepConfiguration.objects.bulk_create(rows)
        audit_record(
            project=project,
            actor=actor,
            action="sweep.create",
            object_type="sweep",
            object_id=str(sweep.pk),
            data={
                "parent_checkpoint": parent_checkpoint.pk,
                "configurations": len(rows),
                "strategy": strategy,
                "suite_versions": [suite_version.pk for suite_version in suite_versions],
            },
        )
        webhook_emit(project=project, event="sweep.started", payload={"sweep": sweep_summary(sweep)})
        _sweep_advance(sweep, actor=actor, planned_steps=steps)
    return sweep


def _configuration_row(*, sweep, position, configuration, planned_steps, search_params=None) -> SweepConfiguration:
    return SweepConfiguration(
        sweep=sweep,
        position=position,
        method=configuration.method,
        hyperparameters=configuration.hyperparameters,
        seed=configuration.seed,
        branch_label=f"sweep-{sweep.pk}-{position}-{configuration.method}"[:100],
        planned_steps=planned_steps,
        search_params=search_params or {},
    )


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
            evaluations.append(
                evaluation_create(
                    project=sweep.project,
                    suite_version=suite_version,
                    checkpoint_a=sweep.parent_checkpoint,
                    checkpoint_b=checkpoint,
                    actor=sweep.created_by,
                    judge=sweep.judge,
                    judge_config=sweep.judge_config or None,
                    generation=sweep.generation or None,
                    seed=sweep.evaluation_seed,
                    utility_dataset_version=sweep.utility_dataset_version,
                    statistics=sweep.statistics or None,
                )
            )
    except LetheError as error:
        configuration.evaluations.add(*evaluations)
        _configuration_set(configuration, status=ConfigurationStatus.FAILED, error=f"its evaluation could not start: {error}")
        return
    configuration.evaluations.add(*evaluations)
    _configuration_set(configuration, status=ConfigurationStatus.EVALUATING)


def _configuration_after_evaluation(configuration) -> None:
    if configuration.status != ConfigurationStatus.EVALUATING:
        return
    states = list(configuration.evaluations.order_by("id").values_list("pk", "run__status", "run__error"))
    for evaluation_id, status, error in states:
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            outcome = ConfigurationStatus.CANCELLED if status == RunStatus.CANCELLED else ConfigurationStatus.FAILED
            _configuration_set(configuration, status=outcome, error=f"evaluation {evaluation_id} {status}: {error}")
            return
    if all(status == RunStatus.SUCCEEDED for _, status, _ in states):
        _configuration_set(configuration, status=ConfigurationStatus.SUCCEEDED)


def sweep_run_finished(*, run) -> None:
    """jobs run-finished listener: a configuration's unlearning run finished (start its
    evaluations, or record its failure or cancellation) or one of its evaluations did; then the
    next waiting configurations start, and the sweep finishes when every configuration has."""
    if run.kind == RunKind.UNLEARNING:
        configuration = SweepConfiguration.objects.filter(unlearning_run__run_id=run.pk).select_related("unlearning_run").first()
        if configuration is None or configuration.status != ConfigurationStatus.UNLEARNING:
            return
        sweep = _sweep_locked(configuration.sweep_id)
        if run.status == RunStatus.SUCCEEDED and sweep.status == SweepStatus.CANCELLED:
            _configuration_set(configuration, status=ConfigurationStatus.CANCELLED, error="the sweep was cancelled before its evaluations started (resume evaluates its child)")
        elif run.status == RunStatus.SUCCEEDED:
            from unlearning.models import UnlearningRun

            checkpoint = UnlearningRun.objects.select_related("produced_checkpoint").get(pk=configuration.unlearning_run_id).produced_checkpoint
            _evaluations_start(sweep=sweep, configuration=configuration, checkpoint=checkpoint)
        else:
            outcome = ConfigurationStatus.CANCELLED if run.status == RunStatus.CANCELLED else ConfigurationStatus.FAILED
            _configuration_set(configuration, status=outcome, error=f"unlearning run {run.pk} {run.status}: {run.error}")
    elif run.kind == RunKind.EVALUATION:
        configuration = SweepConfiguration.objects.filter(evaluations__run_id=run.pk).first()
        if configuration is None:
            return
        sweep = _sweep_locked(configuration.sweep_id)
        _configuration_after_evaluation(configuration)
    else:
        return
    _sweep_advance(sweep, actor=sweep.created_by)


# Budgets and the strategies' proposals ------------------------------------------------------


def _steps_used(configurations) -> int:
    """Training steps the sweep has spent or committed: each started configuration's max_steps
    until its run finishes, then the steps it took."""
    used = 0
    for configuration in configurations:
        unlearning_run = configuration.unlearning_run
        if unlearning_run is None:
            continue
        used += unlearning_run.current_step if unlearning_run.run.is_finished else unlearning_run.hyperparameters.get("max_steps", 0)
    return used


def _budget_refusal(sweep, *, steps_used, planned_steps) -> str:
    """Why a configuration cannot start within the sweep's budgets ("" when it can)."""
    if sweep.budget_seconds is not None and sweep.started_at is not None:
        elapsed = (timezone.now() - sweep.started_at).total_seconds()
        if elapsed >= sweep.budget_seconds:
            return f"skipped: the sweep's wall-time budget of {sweep.budget_seconds} s was spent ({elapsed:.0f} s since it started)"
    if sweep.budget_steps is not None and steps_used + planned_steps > sweep.budget_steps:
        return f"skipped: the sweep's budget of {sweep.budget_steps} training steps is spent ({steps_used} used or under way, this configuration needs {planned_steps})"
    return ""


def _budget_spent(sweep, *, steps_used) -> bool:
    return bool(_budget_refusal(sweep, steps_used=steps_used, planned_steps=0)) or (sweep.budget_steps is not None and steps_used >= sweep.budget_steps)


def _optuna_finished_trials(sweep, configurations):
    """(params, objectives or None) of every optuna configuration that finished."""
    from sweeps.selectors import configuration_objectives

    return [
        (configuration.search_params, configuration_objectives(configuration) if configuration.status == ConfigurationStatus.SUCCEEDED else None)
        for configuration in configurations
        if configuration.search_params and configuration.status in (ConfigurationStatus.SUCCEEDED, ConfigurationStatus.FAILED)
    ]


def _optuna_propose_next(sweep, configurations, *, actor, planned_steps) -> SweepConfiguration | None:
    proposal = optuna_propose(
        sweep.configurations_requested,
        _optuna_finished_trials(sweep, configurations),
        taken={configuration_group(configuration) for configuration in configurations},
        seed=sweep.strategy_seed,
    )
    if proposal is None:
        return None
    configuration = proposal.configuration
    steps = (planned_steps or {}).get((configuration.group, configuration.seed))
    if steps is None:
        steps = _configuration_validate(
            configuration=configuration,
            actor=actor,
            where=f"proposal {len(configurations) + 1}",
            sweep_inputs={
                "parent_checkpoint": sweep.parent_checkpoint,
                "forget_dataset_version": sweep.forget_dataset_version,
                "retain_dataset_version": sweep.retain_dataset_version,
            },
        )
    position = max((existing.position for existing in configurations), default=0) + 1
    row = _configuration_row(sweep=sweep, position=position, configuration=configuration, planned_steps=steps, search_params=proposal.params)
    row.save()
    return row


def configuration_group(configuration) -> str:
    return group_key(configuration.method, configuration.hyperparameters)


def _configuration_start(*, sweep, configuration, actor) -> None:
    """Start one waiting configuration: its unlearning run, or only its evaluations when a resumed
    configuration's child exists already."""
    from unlearning.services import unlearning_run_create

    previous = configuration.unlearning_run
    if previous is not None and previous.run.status == RunStatus.SUCCEEDED and previous.produced_checkpoint_id is not None:
        configuration.evaluations.clear()
        _evaluations_start(sweep=sweep, configuration=configuration, checkpoint=previous.produced_checkpoint)
        return
    try:
        unlearning_run = unlearning_run_create(
            parent_checkpoint=sweep.parent_checkpoint,
            method=configuration.method,
            hyperparameters=configuration.hyperparameters,
            forget_dataset_version=sweep.forget_dataset_version,
            retain_dataset_version=sweep.retain_dataset_version,
            seed=configuration.seed,
            branch_label=configuration.branch_label,
            actor=actor,
        )
    except LetheError as error:
        _configuration_set(configuration, status=ConfigurationStatus.FAILED, error=f"its unlearning run could not start: {error}")
        return
    configuration.evaluations.clear()
    SweepConfiguration.objects.filter(pk=configuration.pk).update(unlearning_run=unlearning_run, status=ConfigurationStatus.UNLEARNING, error="")
    configuration.unlearning_run, configuration.status, configuration.error = unlearning_run, ConfigurationStatus.UNLEARNING, ""


def _sweep_advance(sweep, *, actor, planned_steps=None) -> None:
    """Start what may start now: waiting configurations in order while a slot is free
    (``parallelism``) and the budgets allow (a configuration the budget cannot pay for is skipped,
    with the reason); optuna proposes its next trial when a slot frees. Then finish the sweep
    when every configuration has."""
    if sweep.status != SweepStatus.RUNNING:
        return
    configurations = list(sweep.configurations.select_related("unlearning_run__run").order_by("position"))
    steps_used = _steps_used(configurations)
    # optuna's proposals learn from finished trials: a trial holds its slot until it is evaluated.
    busy = (ConfigurationStatus.UNLEARNING, ConfigurationStatus.EVALUATING) if sweep.strategy == SweepStrategy.OPTUNA else (ConfigurationStatus.UNLEARNING,)
    limit = sweep.parallelism or (1 if sweep.strategy == SweepStrategy.OPTUNA else None)
    in_flight = sum(1 for configuration in configurations if configuration.status in busy)
    while True:
        waiting = [configuration for configuration in configurations if configuration.status == ConfigurationStatus.PENDING]
        if (
            not waiting
            and sweep.strategy == SweepStrategy.OPTUNA
            and (limit is None or in_flight < limit)
            and len({configuration_group(c) for c in configurations}) < sweep.trials
            and not _budget_spent(sweep, steps_used=steps_used)
        ):
            proposed = _optuna_propose_next(sweep, configurations, actor=actor, planned_steps=planned_steps)
            if proposed is not None:
                configurations.append(proposed)
                waiting = [proposed]
        if not waiting:
            break
        configuration = waiting[0]
        refusal = _budget_refusal(sweep, steps_used=steps_used, planned_steps=configuration.planned_steps)
        if refusal:
            _configuration_set(configuration, status=ConfigurationStatus.SKIPPED, error=refusal)
            continue
        if limit is not None and in_flight >= limit:
            break
        _configuration_start(sweep=sweep, configuration=configuration, actor=actor)
        if configuration.status in busy:
            in_flight += 1
            steps_used += configuration.planned_steps if configuration.status == ConfigurationStatus.UNLEARNING else 0
    _sweep_finish_if_done(sweep)


def _sweep_finish_if_done(sweep) -> None:
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    if sweep.status != SweepStatus.RUNNING:
        return
    if sweep.configurations.exclude(status__in=FINISHED_CONFIGURATION_STATUSES).exists():
        return
    sweep.status, sweep.finished_at = SweepStatus.FINISHED, timezone.now()
    sweep.save(update_fields=["status", "finished_at"])
    summary = sweep_summary(sweep)
    audit_record(project=sweep.project, actor=None, action="sweep.finish", object_type="sweep", object_id=str(sweep.pk), data={"configurations": summary["configurations"]})
    webhook_emit(project=sweep.project, event="sweep.finished", payload={"sweep": summary})


# Cancel, resume, add seeds ------------------------------------------------------------------


def sweep_cancel(*, sweep, actor) -> Sweep:
    """Stop a running sweep: waiting configurations are cancelled at once, queued and running
    unlearning runs and evaluations are cancelled (a running one stops at its next step, and its
    configuration reads cancelled then); finished configurations are left as they are."""
    from jobs.services import run_cancel
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    role_require(project=sweep.project, user=actor, role=Role.EDITOR)
    with transaction.atomic():
        sweep = _sweep_locked(sweep.pk)
        if sweep.status != SweepStatus.RUNNING:
            raise Conflict(f"Sweep {sweep.pk} is {sweep.status}; only a running sweep can be cancelled.")
        sweep.status, sweep.finished_at = SweepStatus.CANCELLED, timezone.now()
        sweep.save(update_fields=["status", "finished_at"])
        username = getattr(actor, "username", "") or "someone"
        for configuration in sweep.configurations.select_related("unlearning_run__run").prefetch_related("evaluations__run").order_by("position"):
            if configuration.status == ConfigurationStatus.PENDING:
                _configuration_set(configuration, status=ConfigurationStatus.CANCELLED, error=f"cancelled by {username} before it started")
                continue
            if configuration.status == ConfigurationStatus.UNLEARNING:
                runs = [configuration.unlearning_run.run]
            elif configuration.status == ConfigurationStatus.EVALUATING:
                runs = [evaluation.run for evaluation in configuration.evaluations.all()]
            else:
                continue
            for run in runs:
                if not run.is_finished:
                    try:
                        run_cancel(run=run, actor=actor)
                    except Conflict:
                        pass  # it finished meanwhile: the listener records how
        summary = sweep_summary(sweep)
        audit_record(project=sweep.project, actor=actor, action="sweep.cancel", object_type="sweep", object_id=str(sweep.pk), data={"configurations": summary["configurations"]})
        webhook_emit(project=sweep.project, event="sweep.finished", payload={"sweep": summary})
    return sweep


def sweep_fields_restored(fields, now) -> None:
    """A sweep exported while running is restored cancelled (versions.project_scope's
    ``restored``): a restore never starts work, and ``sweep resume`` queues what did not finish."""
    if fields.get("status") == SweepStatus.RUNNING:
        fields.update(status=SweepStatus.CANCELLED.value, finished_at=now)


def configuration_fields_restored(fields, now) -> None:
    """A configuration exported before it finished is restored cancelled, as a cancel leaves it,
    so resuming the restored sweep queues it again."""
    status = fields.get("status")
    if status in (ConfigurationStatus.PENDING, ConfigurationStatus.UNLEARNING, ConfigurationStatus.EVALUATING):
        fields.update(status=ConfigurationStatus.CANCELLED.value, error=f"restored from a bundle while {status}; resume the sweep to run it")


def _sweep_restart(sweep) -> None:
    sweep.status, sweep.finished_at, sweep.started_at = SweepStatus.RUNNING, None, timezone.now()
    sweep.save(update_fields=["status", "finished_at", "started_at"])


def sweep_resume(*, sweep, actor) -> Sweep:
    """Queue again what did not finish: cancelled and skipped configurations wait again (a
    cancelled one whose child exists is only evaluated); succeeded and failed ones are left as
    they are. The wall-time budget counts from now."""
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    role_require(project=sweep.project, user=actor, role=Role.EDITOR)
    with transaction.atomic():
        sweep = _sweep_locked(sweep.pk)
        resumable = list(sweep.configurations.filter(status__in=(ConfigurationStatus.CANCELLED, ConfigurationStatus.SKIPPED)).order_by("position"))
        if not resumable and not (sweep.status == SweepStatus.CANCELLED and sweep.strategy == SweepStrategy.OPTUNA):
            raise Conflict(f"Sweep {sweep.pk} has no cancelled or skipped configuration to resume.")
        SweepConfiguration.objects.filter(pk__in=[configuration.pk for configuration in resumable]).update(status=ConfigurationStatus.PENDING, error="")
        _sweep_restart(sweep)
        audit_record(
            project=sweep.project,
            actor=actor,
            action="sweep.resume",
            object_type="sweep",
            object_id=str(sweep.pk),
            data={"configurations": [configuration.position for configuration in resumable]},
        )
        webhook_emit(project=sweep.project, event="sweep.started", payload={"sweep": sweep_summary(sweep)})
        _sweep_advance(sweep, actor=actor)
    return sweep


def sweep_seeds_add(*, sweep, seeds, actor) -> list[SweepConfiguration]:
    """One new configuration per seed for every method + hyperparameters of the sweep that does
    not have it yet; nothing else is run again. Returns the new configurations."""
    from jobs.webhooks import webhook_emit
    from versions.services import audit_record

    role_require(project=sweep.project, user=actor, role=Role.EDITOR)
    if not isinstance(seeds, list) or not seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds):
        raise ValidationFailed("seeds must be a non-empty list of non-negative integers.", fields={"seeds": ["Expected integers >= 0."]})
    if len(set(seeds)) != len(seeds):
        raise ValidationFailed("seeds repeat a value.", fields={"seeds": ["Repeated."]})
    with transaction.atomic():
        sweep = _sweep_locked(sweep.pk)
        if sweep.status == SweepStatus.CANCELLED:
            raise Conflict(f"Sweep {sweep.pk} is cancelled; resume it before adding seeds.")
        existing = list(sweep.configurations.order_by("position"))
        groups: dict[str, SweepConfiguration] = {}
        for configuration in existing:
            groups.setdefault(configuration_group(configuration), configuration)
        have = {(configuration_group(configuration), configuration.seed) for configuration in existing}
        sweep_inputs = {
            "parent_checkpoint": sweep.parent_checkpoint,
            "forget_dataset_version": sweep.forget_dataset_version,
            "retain_dataset_version": sweep.retain_dataset_version,
        }
        position = max((configuration.position for configuration in existing), default=0)
        rows = []
        for group, first in groups.items():
            for seed in seeds:
                if (group, seed) in have:
                    continue
                position += 1
                configuration = Configuration(method=first.method, hyperparameters=first.hyperparameters, seed=seed)
                steps = _configuration_validate(configuration=configuration, sweep_inputs=sweep_inputs, actor=actor, where=f"seed {seed}")
                rows.append(_configuration_row(sweep=sweep, position=position, configuration=configuration, planned_steps=steps, search_params=first.search_params))
        if not rows:
            raise Conflict(f"Every configuration of sweep {sweep.pk} already has seed(s) {', '.join(map(str, seeds))}.")
        SweepConfiguration.objects.bulk_create(rows)
        if sweep.status == SweepStatus.FINISHED:
            _sweep_restart(sweep)
            webhook_emit(project=sweep.project, event="sweep.started", payload={"sweep": sweep_summary(sweep)})
        audit_record(
            project=sweep.project,
            actor=actor,
            action="sweep.seeds_add",
            object_type="sweep",
            object_id=str(sweep.pk),
            data={"seeds": seeds, "configurations": [row.position for row in rows]},
        )
        _sweep_advance(sweep, actor=actor)
    return list(sweep.configurations.filter(position__gt=position - len(rows)).order_by("position"))
