"""Reads of unlearning runs, each in a fixed number of queries."""

from django.db.models import F, OuterRef, Subquery

from unlearning.models import UnlearningRun
from core.errors import NotFound

_RELATED = (
    "run",
    "run__created_by",
    "parent_checkpoint__model",
    "produced_checkpoint__model",
    "forget_dataset_version__dataset",
    "retain_dataset_version__dataset",
)


def unlearning_runs_for_project(*, project):
    return UnlearningRun.objects.filter(run__project=project).select_related(*_RELATED).order_by("-id")


def unlearning_run_get(*, project, unlearning_run_id) -> UnlearningRun:
    unlearning_run = unlearning_runs_for_project(project=project).filter(pk=unlearning_run_id).first()
    if unlearning_run is None:
        raise NotFound(f"Unlearning run {unlearning_run_id} not found in project {project.slug!r}.")
    return unlearning_run


def unlearning_runs_for_model(*, model, limit=500):
    """The newest ``limit`` unlearning runs started from the model's checkpoints, oldest first, as
    plain rows {id, method, status, parent_checkpoint_id, produced_checkpoint_id, forget and
    retain dataset version (id, dataset name, number)}: one query, for the lineage graph."""
    rows = (
        UnlearningRun.objects.filter(parent_checkpoint__model=model)
        .order_by("-id")
        .values(
            "id",
            "method",
            "parent_checkpoint_id",
            "produced_checkpoint_id",
            "forget_dataset_version_id",
            "forget_dataset_version__dataset__name",
            "forget_dataset_version__number",
            "retain_dataset_version_id",
            "retain_dataset_version__dataset__name",
            "retain_dataset_version__number",
            status=F("run__status"),
        )[:limit]
    )
    return list(reversed(rows))


def unlearning_run_for_run(*, run):
    """The id of the unlearning run that ``run`` executes, or None: one query."""
    return UnlearningRun.objects.filter(run=run).values_list("pk", flat=True).first()


def checkpoint_producing_run_id():
    """The run that produced a checkpoint, as a subquery over the checkpoint's pk
    (versions.checkpoint_provenance): the API's ``created_by_run``, read in the checkpoint list's
    own statement."""
    return Subquery(UnlearningRun.objects.filter(produced_checkpoint=OuterRef("pk")).order_by("run_id").values("run_id")[:1])


def unlearning_run_producing(*, checkpoint):
    """The unlearning run that produced ``checkpoint`` (with its run), or None: one query."""
    return UnlearningRun.objects.select_related("run").filter(produced_checkpoint=checkpoint).order_by("run_id").first()
