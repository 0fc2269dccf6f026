from django.apps import AppConfig
from django.conf import settings


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.executors import executor_work_register
        from jobs.registry import register_run_handlers_from_spec
        from jobs.services import run_execute, run_fields_restored, run_reap_stale, runs_unlink_for_project_delete
        from jobs.webhooks import webhook_emit_for_registry_event
        from versions.events import project_deleting, registry_event
        from versions.project_scope import register_project_scope

        executor_work_register(execute=run_execute, reap_stale=run_reap_stale)
        register_run_handlers_from_spec(settings.LETHE_EXTRA_RUN_HANDLERS)
        registry_event.connect(webhook_emit_for_registry_event, dispatch_uid="jobs.webhooks")
        project_deleting.connect(runs_unlink_for_project_delete, dispatch_uid="jobs.runs")
        # A project's runs travel in its bundle; its webhooks do not (their secrets are the
        # installation's, and a restored project should not start calling anyone's server).
        register_project_scope("jobs.Run", "project", restored=run_fields_restored)
