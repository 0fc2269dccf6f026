from django.apps import AppConfig


class UnlearningConfig(AppConfig):
    name = "unlearning"
    verbose_name = "Unlearning"

    def ready(self):
        from jobs.registry import register_run_handler
        from jobs.models import RunKind

        register_run_handler(
            RunKind.UNLEARNING,
            "unlearning.services.unlearning_run_execute",
            retry="unlearning.services.unlearning_run_retry",
        )
