from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Safety evaluation"

    def ready(self):
        from jobs.registry import register_run_handler
        from versions.promotion import register_promotion_policy

        register_run_handler("evaluation", "evals.services.evaluation_execute", retry="evals.services.evaluation_retry_copy")
        # The registry asks this policy whether an evaluation lets a protected label move (label_move).
        register_promotion_policy("evals.gate.promotion_gate_check")
