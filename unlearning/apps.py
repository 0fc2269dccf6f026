from django.apps import AppConfig


class UnlearningConfig(AppConfig):
    name = "unlearning"
    verbose_name = "Unlearning"

    def ready(self):
        from jobs.models import RunKind
        from jobs.registry import register_run_handler
        from versions.checkpoint_provenance import register_checkpoint_producer
        from versions.project_scope import register_project_scope

        register_run_handler(
            RunKind.UNLEARNING,
            "unlearning.services.unlearning_run_execute",
            retry="unlearning.services.unlearning_run_retry",
        )
        register_checkpoint_producer("unlearning.selectors.checkpoint_producing_run_id")
        register_project_scope("unlearning.UnlearningRun", "run__project")
