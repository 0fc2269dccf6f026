"""The one run lifecycle shared by every long job (unlearning runs, evaluations).

The row is the record of truth: whichever executor runs it (worker threads in-process or a
Celery worker), status, heartbeat, progress and log live here.
"""

from django.conf import settings
from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class RunKind(models.TextChoices):
    UNLEARNING = "unlearning"
    EVALUATION = "evaluation"


class Run(models.Model):
    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Which executor and worker claimed it ("inprocess:<host>:<pid>" or "celery:<hostname>").
    worker = models.CharField(max_length=200, blank=True)
    progress = models.FloatField(default=0.0)  # 0..1
    progress_message = models.CharField(max_length=200, blank=True)
    log = models.TextField(blank=True)  # bounded: the newest LETHE_RUN_LOG_MAX_CHARS characters
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")
    # What it produced, e.g. {"type": "checkpoint", "id": 12}.
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="run_by_project")]

    def __str__(self):
        return f"run {self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self):
        return self.status in FINISHED_STATUSES


class WebhookEvent(models.TextChoices):
    PROMPT_VERSION_COMMITTED = "prompt_version.committed"
    CHECKPOINT_REGISTERED = "checkpoint.registered"
    LABEL_MOVED = "label.moved"
    RUN_FINISHED = "run.finished"
    EVALUATION_FINISHED = "evaluation.finished"
    SWEEP_STARTED = "sweep.started"
    SWEEP_FINISHED = "sweep.finished"


class Webhook(models.Model):
    """A URL a project wants told about events, each POST signed with the hook's secret.

    The secret is kept in clear (an HMAC needs it); it is shown once, at creation, and never
    serialized again.
    """

    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)  # WebhookEvent values
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"webhook {self.pk} -> {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # not yet sent, or waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # gave up after the last attempt


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    # The exact JSON object POSTed (the signature is over its canonical serialization).
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)  # of the latest attempt
    error = models.TextField(blank=True)  # of the latest attempt
    # [{"attempt": 1, "at": iso, "response_code": 500, "error": ""}, ...]
    attempt_log = models.JSONField(default=list)
    # When a sender may (re)try it. A sender leases a delivery by moving this forward, so two
    # processes never send the same attempt and a dead sender's lease simply expires.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["webhook", "-id"], name="delivery_by_webhook")]
