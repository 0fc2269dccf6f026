from rest_framework import serializers

from jobs.logs import log_without_internals
from jobs.models import DeliveryStatus, RunStatus, WebhookEvent

# Events are checked by the service, which names every unknown one in its error.
EVENTS_HELP = "Some of: " + ", ".join(WebhookEvent.values)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    worker = serializers.CharField()
    progress = serializers.FloatField(help_text="0..1")
    progress_message = serializers.CharField()
    error = serializers.CharField()
    cancel_requested = serializers.BooleanField()
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    result = serializers.JSONField(help_text='What the run produced, e.g. {"type": "checkpoint", "id": 12}.')


class RunDetailSerializer(RunSerializer):
    """With context ``full_log`` (project admins) the log as written; otherwise without
    tracebacks and server paths (see jobs.logs)."""

    log = serializers.SerializerMethodField(
        help_text="The newest LETHE_RUN_LOG_MAX_CHARS characters of the run's log; below the admin role, each traceback is reduced to its last line and server paths to file names."
    )

    def get_log(self, run) -> str:
        return run.log if self.context.get("full_log") else log_without_internals(run.log)


class RunListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    kind = serializers.CharField(required=False)


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.URLField(max_length=1000)
    events = serializers.ListField(child=serializers.CharField(), help_text=EVENTS_HELP, allow_empty=False)
    active = serializers.BooleanField(default=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class WebhookCreateSerializer(WebhookSerializer):
    secret = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Generated when left out; returned only in this response.")


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once: keep it to verify X-Lethe-Signature.")


class WebhookUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=1000, required=False)
    events = serializers.ListField(child=serializers.CharField(), help_text=EVENTS_HELP, allow_empty=False, required=False)
    active = serializers.BooleanField(required=False)


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    response_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    attempt_log = serializers.JSONField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    payload = serializers.JSONField()
