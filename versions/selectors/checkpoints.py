"""Models and checkpoints, as the API's rows."""

from django.db.models import F, Prefetch

from versions import sql
from versions.checkpoint_provenance import producing_run_id
from core.errors import NotFound
from versions.models import Checkpoint, CheckpointFile, Label, Model
from versions.selectors.projects import _named_in_project


def models_for_project(*, project):
    return (
        Model.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("labels", queryset=Label.objects.select_related("checkpoint").order_by("name")))
        .order_by("name")
    )


def model_get(*, project, name):
    model = _named_in_project(Model, project=project, name=name)
    if model is None:
        raise NotFound(f"Model {name!r} not found in {project.slug}.")
    return model


# Columns the API returns as they are, then those checkpoint_rows_complete renames or needs.
_CHECKPOINT_API_COLUMNS = (
    "number",
    "kind",
    "external_ref",
    "external_revision",
    "endpoint",
    "architecture",
    "message",
    "metadata",
    "weight_change",
    "sha256",
    "total_size",
    "generation",
)


_CHECKPOINT_ROW_FIELDS = ("id", *_CHECKPOINT_API_COLUMNS, "created_at")


def checkpoints_for_model(*, model, tag=None):
    """A model's checkpoints, newest first, as plain rows rather than model instances (a page of
    100 built 200 instances and three prefetches, 6x the cost of the rows). Cut a page, then give
    it to checkpoint_rows_complete; ``tag`` keeps those carrying that tag."""
    checkpoints = Checkpoint.objects.filter(model=model)
    if tag:
        # A join (a tag name is unique per checkpoint): walking the (model, number) index newest
        # first and probing each checkpoint's tags stops at the page, where the former IN
        # (subquery) hashed every checkpoint of the model.
        checkpoints = checkpoints.filter(tags__name=tag)
    return checkpoints.order_by("-number").values(*_CHECKPOINT_ROW_FIELDS, creator=F("created_by__username"), producing_run_id=producing_run_id())


def checkpoint_row_of(checkpoint):
    """``checkpoint``, just registered through the API, in the API's shape, as
    checkpoint_rows_complete gives it, built from the instance: it is answered without reading it
    back (building the values query took most of the 1.8 ms that cost). No run produced it: a
    run's handler registers its checkpoint itself and answers with the run's result."""
    row = {**{field: getattr(checkpoint, field) for field in _CHECKPOINT_ROW_FIELDS}, "creator": checkpoint.created_by.username, "producing_run_id": None}
    return checkpoint_rows_complete([row])[0]


def checkpoint_rows_complete(rows):
    """Rows of checkpoints_for_model (a page of them) in the API's shape (CheckpointSerializer):
    with ``labels`` and ``tags`` (names, by name) and ``parents`` ({model, number, relation,
    method}, as added), read in one statement."""
    complete = {}
    for row in rows:
        complete[row["id"]] = {
            **{column: row[column] for column in _CHECKPOINT_API_COLUMNS},
            "parents": [],
            "labels": [],
            "tags": [],
            "created_by": row["creator"],
            "created_by_run": row["producing_run_id"],
            "created_at": row["created_at"],
        }
    for checkpoint_id, what, name, number, relation, method, _ in sql.checkpoint_labels_tags_parents(complete):
        if what == "parent":
            complete[checkpoint_id]["parents"].append({"model": name, "number": number, "relation": relation, "method": method})
        else:
            complete[checkpoint_id][f"{what}s"].append(name)
    return list(complete.values())


def checkpoint_files(*, checkpoint):
    return CheckpointFile.objects.filter(checkpoint=checkpoint).select_related("blob").order_by("path")


def checkpoint_get(*, model, number):
    checkpoint = Checkpoint.objects.filter(model=model, number=number).select_related("model__project", "created_by").first()
    if checkpoint is None:
        raise NotFound(f"{model.name} has no checkpoint {number}.")
    return checkpoint


def checkpoint_get_by_name(*, project, model_name, number):
    """Checkpoint ``number`` of the project's model named ``model_name``, with its model, in one
    statement (every checkpoint URL names both); when it is missing, the error says whether the
    model or the checkpoint is."""
    checkpoint = Checkpoint.objects.filter(model__project=project, model__name=model_name, number=number).select_related("model", "created_by").first()
    if checkpoint is None:  # raises, naming what is missing (or finds one registered meanwhile)
        return checkpoint_get(model=model_get(project=project, name=model_name), number=number)
    checkpoint.model.project = project  # the caller's, not joined again
    return checkpoint
