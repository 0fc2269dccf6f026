from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "sweeps"
    verbose_name = "Unlearning sweeps"

    def ready(self):
        from jobs.registry import register_run_finished_listener
        from sweeps.services import configuration_fields_restored, sweep_fields_restored
        from versions.project_scope import register_project_scope

        # Each configuration moves on when its unlearning run or an evaluation finishes.
        register_run_finished_listener("sweeps.services.sweep_run_finished")
        register_project_scope("sweeps.Sweep", "project", restored=sweep_fields_restored)
        register_project_scope("sweeps.SweepConfiguration", "sweep__project", restored=configuration_fields_restored)
