from django.apps import AppConfig
from django.conf import settings


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.registry import register_run_handlers_from_spec
        from jobs.webhooks import webhook_emit_for_registry_event
        from versions.events import registry_event

        register_run_handlers_from_spec(settings.LETHE_EXTRA_RUN_HANDLERS)
        registry_event.connect(webhook_emit_for_registry_event, dispatch_uid="jobs.webhooks")
