"""Which rows make up a project, parents before children: what a bundle holds (versions.bundle)
and what deleting a project removes (versions.services.project_delete, in reverse). Models are
named by label, so the registry lists the higher apps' rows without importing them."""

from django.apps import apps
from django.db.models import Q

# Parents before children, so a restore inserts rows in an order the constraints accept.
PROJECT_SCOPES = [
    ("versions.Project", "pk"),
    ("versions.Membership", "project"),
    ("versions.Prompt", "project"),
    ("versions.PromptVersion", "prompt__project"),
    ("versions.Model", "project"),
    ("versions.Dataset", "project"),
    ("versions.DatasetVersion", "dataset__project"),
    ("jobs.Run", "project"),
    ("versions.Checkpoint", "model__project"),
    ("versions.CheckpointFile", "checkpoint__model__project"),
    ("versions.LineageEdge", "child__model__project"),
    ("unlearning.UnlearningRun", "run__project"),
    ("evals.Suite", "project"),
    ("evals.SuiteVersion", "suite__project"),
    ("evals.Case", "suite_version__suite__project"),
    ("evals.Evaluation", "project"),
    ("evals.CaseResult", "evaluation__project"),
    ("evals.Calibration", "project"),
    ("evals.CalibrationItem", "calibration__project"),
    ("versions.Label", "project"),
    ("versions.LabelEvent", "label__project"),
    ("evals.PromotionEvidence", "label_event__label__project"),
    ("versions.Tag", None),  # on a checkpoint or a prompt version of the project
    ("versions.AuditEvent", "project"),
]


def project_rows(label, lookup, project):
    """The rows of model ``label`` that belong to ``project`` (``lookup`` from PROJECT_SCOPES), by pk."""
    model = apps.get_model(label)
    if label == "versions.Tag":
        return model.objects.filter(Q(checkpoint__model__project=project) | Q(prompt_version__prompt__project=project)).order_by("pk")
    return model.objects.filter(**{lookup: project.pk if lookup == "pk" else project}).order_by("pk")
