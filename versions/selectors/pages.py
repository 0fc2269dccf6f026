"""Reads the web pages make, each with a fixed number of queries."""

from versions.models import Label, LabelEvent, LineageEdge
from versions.promotion import label_events_with_evidence


def label_events_for_project(*, project):
    """Label moves of every prompt and model of the project, newest first."""
    return label_events_with_evidence(
        LabelEvent.objects.filter(label__project=project)
        .select_related("label__prompt", "label__model", "actor", "from_prompt_version", "to_prompt_version", "from_checkpoint", "to_checkpoint")
        .order_by("-id")
    )


def labels_named(*, project, name):
    """Every label called ``name`` in the project (e.g. all the `production` pointers)."""
    return Label.objects.filter(project=project, name=name).select_related("prompt", "prompt_version", "model", "checkpoint").order_by("prompt__name", "model__name")


def checkpoint_lineage_edges(*, checkpoint):
    """(parent edges, child edges) of one checkpoint, with the checkpoints at their other end."""
    parents = list(LineageEdge.objects.filter(child=checkpoint).select_related("parent__model").order_by("id"))
    children = list(LineageEdge.objects.filter(parent=checkpoint).select_related("child__model").order_by("id"))
    return parents, children
