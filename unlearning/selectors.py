"""Reads of unlearning runs, each in a fixed number of queries."""
from unlearning.models import UnlearningRun
from versions.errors import NotFound

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
