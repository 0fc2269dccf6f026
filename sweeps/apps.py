from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "sweeps"
    verbose_name = "Unlearning sweeps"

    def ready(self):
        from jobs.registry import register_run_finished_listener

        # Each configuration moves on when its unlearning run or an evaluation finishes.
        register_run_finished_listener("sweeps.services.sweep_run_finished")
