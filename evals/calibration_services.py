"""Writes for judge calibration: labelled judgement sets imported as versioned datasets, and
calibrations (a judge measured against one set version) with the run handler that executes them.
The metrics are evals.calibration's; the judge is called only through judge_from_spec and
``Judge.judge``, so every judge can be calibrated the same way."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from evals import judgement_sets
from evals.models import Calibration, CalibrationItem
from core.errors import NotFound, TooLarge, ValidationFailed
from versions.models import DatasetKind, Role
from versions.permissions import role_require
from core.tabular import TabularError

CALIBRATION_RUN_KIND = "calibration"
# Rows judged between two progress reports and cancellation checks.
JUDGE_CHUNK = 64
DETAIL_MAX_CHARS = 500


def judgement_set_version_import(*, dataset, data: bytes, format, actor, column_mapping=None, defaults=None, label_mapping=None, message=""):
    """A new version of the judgements dataset `dataset` from a file in one of
    evals.judgement_sets.FORMATS; all or nothing, every error with its line."""
    from versions.services import dataset_version_create

    role_require(project=dataset.project, user=actor, role=Role.EDITOR)
    if dataset.kind != DatasetKind.JUDGEMENTS:
        raise ValidationFailed(
            f"Dataset {dataset.name!r} is a {dataset.kind} dataset; judgement files are imported into a dataset of kind judgements.",
            fields={"dataset": ["Not a judgements dataset."]},
        )
    limit = settings.LETHE_MAX_SUITE_IMPORT_BYTES
    if len(data) > limit:
        raise TooLarge(f"The file is {len(data)} bytes; imports are limited to {limit} bytes (LETHE_MAX_SUITE_IMPORT_BYTES).")
    for name, value in (("column_mapping", column_mapping), ("defaults", defaults), ("label_mapping", label_mapping)):
        if value is not None and not isinstance(value, dict):
            raise ValidationFailed(f"{name} must be an object.", fields={name: ["Expected an object."]})
    try:
        rows = judgement_sets.parse_judgements(
            data,
            format=format,
            max_line_bytes=settings.LETHE_MAX_IMPORT_LINE_BYTES,
            column_mapping=column_mapping,
            defaults=defaults,
            label_mapping=label_mapping,
        )
    except TabularError as exc:
        raise ValidationFailed(exc.render(), fields={"file": exc.messages() or [exc.summary]}) from None
    return dataset_version_create(dataset=dataset, rows=rows, actor=actor, message=message or f"imported ({format})")


def calibration_create(*, project, dataset_version, actor, judge, judge_config=None, enqueue=True) -> Calibration:
    """Create a calibration and its run (queued; enqueued on commit unless `enqueue` is False).

    The judge is built here, as for an evaluation, so a bad name or config fails now; it is pinned
    by its config hash and built again from the same request when the run executes."""
    from evals.judges import judge_from_spec
    from jobs.services import run_create, run_enqueue

    role_require(project=project, user=actor, role=Role.EDITOR)
    dataset = dataset_version.dataset
    if dataset.project_id != project.pk:
        raise NotFound(f"Dataset version {dataset_version.pk} is not in {project.slug}.", fields={"set": ["Not found."]})
    if dataset.kind != DatasetKind.JUDGEMENTS:
        raise ValidationFailed(
            f"Dataset {dataset.name!r} is a {dataset.kind} dataset; a judge is calibrated on a judgements dataset.",
            fields={"set": ["Not a judgements dataset."]},
        )
    if judge_config is not None and not isinstance(judge_config, dict):
        raise ValidationFailed("judge_config must be an object.", fields={"judge_config": ["Expected an object."]})
    try:
        judge_spec = judge_from_spec(judge, judge_config).spec()
    except ValueError as exc:
        raise ValidationFailed(f"Invalid judge: {exc}", fields={"judge": [str(exc)]}) from None
    judge_spec["requested_config"] = dict(judge_config or {})
    with transaction.atomic():
        run = run_create(project=project, kind=CALIBRATION_RUN_KIND, created_by=actor)
        calibration = Calibration.objects.create(
            run=run,
            project=project,
            dataset_version=dataset_version,
            judge=judge_spec,
            judge_name=judge_spec["name"],
            judge_config_sha256=judge_spec["config_sha256"],
        )
        if enqueue:
            run_enqueue(run=run)
    return calibration


def calibration_execute(*, run, ctx) -> dict:
    """Run handler for kind "calibration": the judge labels every response of the set version, and
    its outcomes are compared with the human labels. Nothing is written until the last step, one
    transaction; a failed or cancelled run leaves no partial result."""
    from evals.calibration import LabelledJudgement, calibration_metrics, judgement_agrees
    from evals.judge_base import JudgeInput
    from evals.judges import judge_from_spec
    from evals.metrics import OUTCOMES
    from versions.selectors import dataset_version_rows

    calibration = Calibration.objects.select_related("dataset_version__dataset", "dataset_version__blob").get(run=run)
    version = calibration.dataset_version
    judge = judge_from_spec(calibration.judge_name, calibration.judge.get("requested_config") or {})
    if judge.spec()["config_sha256"] != calibration.judge_config_sha256:
        raise ValueError(
            f"judge {judge.name!r} changed since the calibration was created (config hash "
            f"{judge.spec()['config_sha256'][:12]} != pinned {calibration.judge_config_sha256[:12]}); start a new calibration"
        )
    rows = dataset_version_rows(dataset_version=version)
    ctx.log(f"calibration {calibration.pk}: judge {judge.name} v{judge.version} on {version.dataset.name}@{version.number} ({len(rows)} rows)")
    outcomes, details = [], []
    for start in range(0, len(rows), JUDGE_CHUNK):
        ctx.check_cancelled()
        chunk = rows[start : start + JUDGE_CHUNK]
        judgements = judge.judge([JudgeInput(row["prompt"], row["response"], row["expected"]) for row in chunk])
        if len(judgements) != len(chunk):
            raise ValueError(f"judge {judge.name!r} returned {len(judgements)} judgements for {len(chunk)} responses")
        for judgement in judgements:
            if judgement.outcome not in OUTCOMES:
                raise ValueError(f"judge {judge.name!r} returned the outcome {judgement.outcome!r}, not one of {', '.join(OUTCOMES)}")
            outcomes.append(judgement.outcome)
            details.append(judgement.detail)
        ctx.progress(0.95 * min(start + JUDGE_CHUNK, len(rows)) / len(rows), f"judged {min(start + JUDGE_CHUNK, len(rows))}/{len(rows)}")
    ctx.check_cancelled()

    items = [LabelledJudgement(row["expected"], row["human"], outcome) for row, outcome in zip(rows, outcomes, strict=True)]
    metrics = calibration_metrics(items)
    disagreements = []
    for row_number, (row, item, detail) in enumerate(zip(rows, items, details, strict=True), start=1):
        if judgement_agrees(item):
            continue
        disagreements.append(
            CalibrationItem(
                calibration=calibration,
                rank=len(disagreements) + 1,
                row_number=row_number,
                key=row.get("key", ""),
                prompt=row["prompt"],
                response=row["response"],
                expected=row["expected"],
                category=row.get("category", ""),
                human=item.human,
                judged=item.judged,
                detail=str(detail or "")[:DETAIL_MAX_CHARS],
            )
        )
    ctx.progress(0.97, "saving results")
    with transaction.atomic():
        CalibrationItem.objects.bulk_create(disagreements, batch_size=500)
        calibration.metrics = metrics
        calibration.judged = outcomes
        calibration.disagreement_count = len(disagreements)
        calibration.save(update_fields=["metrics", "judged", "disagreement_count"])
    agreement = metrics["agreement"]
    ctx.log(f"agreement {agreement['successes']}/{agreement['trials']}; {len(disagreements)} disagreements, {metrics['judge_errors']} judge errors")
    return {"type": "calibration", "id": calibration.pk, "agreement": agreement["value"], "disagreements": len(disagreements)}


def calibration_retry_copy(*, run, new_run) -> Calibration:
    """Retry hook: the new run calibrates exactly the judge and set the failed or cancelled one was asked to."""
    original = Calibration.objects.get(run=run)
    return Calibration.objects.create(run=new_run, **{name: getattr(original, name) for name in ("project", "dataset_version", "judge", "judge_name", "judge_config_sha256")})


def calibration_hazard_read_record(*, project, actor, calibration, items) -> None:
    """The `hazard.read` audit event of a page that showed responses unredacted (`items`: the
    disagreements whose response it showed); nothing when there were none. Any response of a
    labelled set may be harmful text, whatever its row's `expected` says (editors write that), as
    for evaluations (evals.hazards)."""
    from versions.services import hazard_read_record

    shown = [item.pk for item in items]
    if shown:
        hazard_read_record(project=project, actor=actor, object_type="calibration", object_id=calibration.pk, data={"disagreements": shown})
