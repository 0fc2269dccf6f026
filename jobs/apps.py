import os

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.registry import register_run_handlers_from_spec

        register_run_handlers_from_spec(os.environ.get("LETHE_EXTRA_RUN_HANDLERS", ""))
