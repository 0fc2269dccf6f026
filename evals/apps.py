from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Safety evaluation"

    def ready(self):
        from jobs.registry import register_run_handler

        register_run_handler(
            "evaluation", "evals.services.evaluation_execute",
            retry="evals.services.evaluation_retry_copy", finished="evals.services.evaluation_finished_emit",
        )
