"""Reads of runs and webhooks; each issues a fixed number of queries whatever the row count."""

from jobs.models import Run, RunStatus, Webhook, WebhookDelivery
from core.errors import NotFound, ValidationFailed


def run_list(*, project, status=None, kind=None):
    """The project's runs, newest first, optionally filtered by status and kind."""
    runs = Run.objects.filter(project=project).select_related("created_by").defer("log")
    if status:
        if status not in RunStatus.values:
            raise ValidationFailed(f"Unknown run status {status!r}; expected one of {', '.join(RunStatus.values)}.", fields={"status": ["Unknown status."]})
        runs = runs.filter(status=status)
    if kind:
        runs = runs.filter(kind=kind)
    return runs.order_by("-id")


def run_get(*, project, run_id):
    run = Run.objects.filter(project=project, pk=run_id).select_related("created_by", "project").first()
    if run is None:
        raise NotFound(f"Run {run_id} not found in project {project.slug!r}.")
    return run


def run_get_by_id(*, run_id):
    run = Run.objects.filter(pk=run_id).select_related("created_by", "project").first()
    if run is None:
        raise NotFound(f"Run {run_id} not found.")
    return run


def webhook_list(*, project):
    return Webhook.objects.filter(project=project).order_by("id")


def webhook_get(*, project, webhook_id):
    webhook = Webhook.objects.filter(project=project, pk=webhook_id).select_related("project").first()
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found in project {project.slug!r}.")
    return webhook


def webhook_delivery_list(*, webhook):
    return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")


def run_list_all(*, status=None, kind=None):
    """Runs of every project (operators' CLI), newest first."""
    runs = Run.objects.select_related("created_by", "project").defer("log")
    if status:
        runs = runs.filter(status=status)
    if kind:
        runs = runs.filter(kind=kind)
    return runs.order_by("-id")
