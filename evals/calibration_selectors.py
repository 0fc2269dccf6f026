"""Reads for judge calibration. Lists join what they render, so they run a fixed number of
queries whatever the number of rows; a calibration's disagreements are paged by rank."""

from evals.models import Calibration, CalibrationItem
from core.errors import LetheError, NotFound
from versions.models import DatasetKind

# Joined with every calibration: its run (and who started it) and its set version.
CALIBRATION_RELATED = ("run__created_by", "dataset_version__dataset")


def calibrations_for_project(*, project):
    # `judged` holds one outcome per row of the set: only the run handler needs it.
    return Calibration.objects.filter(project=project).select_related(*CALIBRATION_RELATED).defer("judged").order_by("-id")


def calibration_get(*, project, calibration_id):
    calibration = calibrations_for_project(project=project).filter(pk=calibration_id).first()
    if calibration is None:
        raise NotFound(f"No calibration {calibration_id} in {project.slug}.")
    return calibration


def calibration_disagreements(*, calibration, expected=None):
    items = CalibrationItem.objects.filter(calibration=calibration).order_by("rank")
    if expected:
        items = items.filter(expected=expected)
    return items


def judgement_sets_for_project(*, project):
    """The project's judgements datasets' versions, newest first within each set (for choosing one)."""
    from versions.models import DatasetVersion

    return DatasetVersion.objects.filter(dataset__project=project, dataset__kind=DatasetKind.JUDGEMENTS).select_related("dataset").order_by("dataset__name", "-number")


def judge_calibration_status(*, project, judge) -> dict:
    """How far the judge pinned as `judge` ({"name", "config_sha256", ...}) is calibrated on the
    project's calibration set: the newest finished calibration of that judge (same name and config
    hash) on that set version, or why there is none. A JSON-able dict (evals.reporting words it).

    {"set": "name@N" | None, "setting": the project setting, "calibration": {...} | None,
     "reason": "no_set" | "no_version" | "set_missing" | "not_calibrated" | None}
    """
    from versions.selectors import dataset_version_resolve

    status = {"setting": project.calibration_set, "set": None, "judge": {key: judge.get(key) for key in ("name", "version", "config_sha256")}, "calibration": None, "reason": None}
    if not project.calibration_set:
        status["reason"] = "no_set"
        return status
    try:
        version = dataset_version_resolve(project=project, ref=project.calibration_set, kind=DatasetKind.JUDGEMENTS, allow_empty=True)
    except LetheError as exc:
        status.update(reason="set_missing", error=str(exc))
        return status
    if version is None:
        status["reason"] = "no_version"
        return status
    status["set"] = f"{version.dataset.name}@{version.number}"
    calibration = (
        Calibration.objects.filter(dataset_version=version, judge_name=judge.get("name"), judge_config_sha256=judge.get("config_sha256"), run__status="succeeded")
        .select_related("run")
        .defer("judged")
        .order_by("-id")
        .first()
    )
    if calibration is None:
        status["reason"] = "not_calibrated"
        return status
    metrics = calibration.metrics
    status["calibration"] = {
        "id": calibration.pk,
        "judge_version": calibration.judge.get("version"),
        "n": metrics["n"],
        "agreement": metrics["agreement"],
        "agreement_by_expected": metrics["agreement_by_expected"],
        "kappa": metrics["kappa"],
        "calibrated_at": calibration.run.finished_at.isoformat() if calibration.run.finished_at else None,
    }
    return status
