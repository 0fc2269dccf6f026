"""Which rows make up a project, parents before children: what a bundle holds (versions.bundle)
and what deleting a project removes (versions.services.project_delete, in reverse).

Each app registers its own project-scoped models in its ``AppConfig.ready`` (the registry's in
VersionsConfig), so the registry never names a higher app's models and an app added later
cannot be forgotten by the bundle. Apps are ready in INSTALLED_APPS order, bottom layer first,
and a model holds keys only into its own app or a lower one (tests/test_architecture.py), so
the registration order is an order in which a restore's constraints hold."""

from dataclasses import dataclass
from typing import Callable

from django.apps import apps
from django.db.models import Q


@dataclass(frozen=True)
class ProjectScope:
    label: str  # "app_label.ModelName"
    # How a row belongs to a project: a lookup path to it ("project", "run__project"; "pk" for the
    # project itself) or, for a model reached by one of several paths, ``project -> Q``.
    lookup: str | Callable
    # ``restored(fields, now_iso)`` rewrites one exported row's fields before a restore (runs
    # that were executing come back failed, so a restore never starts work); None leaves them.
    restored: Callable | None = None


_SCOPES: list[ProjectScope] = []


def register_project_scope(label, lookup, *, restored=None) -> None:
    """Add ``label``'s rows to every project's scope, after those registered before it."""
    if any(scope.label == label for scope in _SCOPES):
        raise ValueError(f"{label} is already part of the project scope.")
    _SCOPES.append(ProjectScope(label=label, lookup=lookup, restored=restored))


def project_scopes() -> list[ProjectScope]:
    """Every registered scope, parents before children."""
    return list(_SCOPES)


def project_rows(scope, project):
    """The rows of ``scope``'s model that belong to ``project``, by pk."""
    model = apps.get_model(scope.label)
    if callable(scope.lookup):
        return model.objects.filter(scope.lookup(project)).order_by("pk")
    return model.objects.filter(**{scope.lookup: project.pk if scope.lookup == "pk" else project}).order_by("pk")


def _tag_in_project(project):
    # A tag is on a checkpoint or a prompt version of the project.
    return Q(checkpoint__model__project=project) | Q(prompt_version__prompt__project=project)


def register_registry_scopes() -> None:
    """The registry's own rows (called in VersionsConfig.ready, before any higher app's)."""
    for label, lookup in (
        ("versions.Project", "pk"),
        ("versions.Membership", "project"),
        ("versions.Prompt", "project"),
        ("versions.PromptVersion", "prompt__project"),
        ("versions.Model", "project"),
        ("versions.Dataset", "project"),
        ("versions.DatasetVersion", "dataset__project"),
        ("versions.Checkpoint", "model__project"),
        ("versions.CheckpointFile", "checkpoint__model__project"),
        ("versions.LineageEdge", "child__model__project"),
        ("versions.Label", "project"),
        ("versions.LabelEvent", "label__project"),
        ("versions.Tag", _tag_in_project),
        ("versions.AuditEvent", "project"),
    ):
        register_project_scope(label, lookup)
