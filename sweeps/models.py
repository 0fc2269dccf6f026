from django.conf import settings
from django.db import models


class SweepStatus(models.TextChoices):
    RUNNING = "running"  # some configuration is still waiting, unlearning or being evaluated
    FINISHED = "finished"  # every configuration succeeded, failed or was skipped
    CANCELLED = "cancelled"  # cancelled on request: resume re-queues what did not finish


class SweepStrategy(models.TextChoices):
    GRID = "grid"  # every configuration of the grid
    RANDOM = "random"  # ``trials`` configurations drawn from the grid with ``strategy_seed``
    OPTUNA = "optuna"  # ``trials`` proposed one after another by a multi-objective Optuna study


class Sweep(models.Model):
    """Many unlearning configurations of one parent on the same data, each evaluated against the
    parent on the same suites with the same judge and statistics settings."""

    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="sweeps")
    name = models.CharField(max_length=200, blank=True)
    parent_checkpoint = models.ForeignKey("versions.Checkpoint", on_delete=models.PROTECT, related_name="sweeps")
    forget_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    retain_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    utility_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    suite_versions = models.ManyToManyField("evals.SuiteVersion", related_name="sweeps")
    # The request as sent: [{"method", "hyperparameters", "grid", "seeds"}].
    configurations_requested = models.JSONField(default=list)
    judge = models.CharField(max_length=64)
    judge_config = models.JSONField(default=dict, blank=True)
    generation = models.JSONField(default=dict, blank=True)
    statistics = models.JSONField(default=dict, blank=True)
    evaluation_seed = models.IntegerField(default=0)
    strategy = models.CharField(max_length=16, choices=SweepStrategy.choices, default=SweepStrategy.GRID)
    trials = models.PositiveIntegerField(null=True, blank=True)  # random and optuna: how many configurations
    strategy_seed = models.IntegerField(default=0)
    # At most this many configurations unlearning at once (None: all); the rest wait as pending.
    parallelism = models.PositiveIntegerField(null=True, blank=True)
    # Budgets: a configuration not started when one is spent is skipped, with the reason.
    budget_steps = models.PositiveIntegerField(null=True, blank=True)  # total training steps
    budget_seconds = models.PositiveIntegerField(null=True, blank=True)  # wall time since started_at
    started_at = models.DateTimeField(null=True, blank=True)  # created, resumed or given seeds
    status = models.CharField(max_length=16, choices=SweepStatus.choices, default=SweepStatus.RUNNING, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="sweep_by_project")]

    def __str__(self):
        return f"sweep {self.pk}"


class ConfigurationStatus(models.TextChoices):
    PENDING = "pending"  # not started yet: waits for a free slot (parallelism) or its turn (optuna)
    UNLEARNING = "unlearning"
    EVALUATING = "evaluating"
    SUCCEEDED = "succeeded"  # its checkpoint exists and every evaluation succeeded
    FAILED = "failed"  # its run or one of its evaluations failed: see error
    CANCELLED = "cancelled"  # the sweep was cancelled before it finished: resume re-queues it
    SKIPPED = "skipped"  # not started because the sweep's budget was spent: see error


FINISHED_CONFIGURATION_STATUSES = (ConfigurationStatus.SUCCEEDED, ConfigurationStatus.FAILED, ConfigurationStatus.SKIPPED)


class SweepConfiguration(models.Model):
    """One point of the grid with one seed: one branch, one unlearning run, one evaluation per suite."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="configurations")
    position = models.PositiveIntegerField()  # 1..n in expansion order
    method = models.CharField(max_length=32)
    hyperparameters = models.JSONField(default=dict)  # as requested (the run stores them resolved)
    seed = models.IntegerField(default=0)
    branch_label = models.CharField(max_length=100)
    # None until it starts; a resumed configuration points at its new run.
    unlearning_run = models.OneToOneField("unlearning.UnlearningRun", on_delete=models.PROTECT, related_name="sweep_configuration", null=True, blank=True)
    # optuna: the trial's parameters ({"entry": index, "<index>.<name>": value}); empty otherwise.
    search_params = models.JSONField(default=dict, blank=True)
    planned_steps = models.PositiveIntegerField(default=0)  # its resolved max_steps (budget_steps counts them)
    evaluations = models.ManyToManyField("evals.Evaluation", related_name="sweep_configurations", blank=True)
    status = models.CharField(max_length=16, choices=ConfigurationStatus.choices, default=ConfigurationStatus.PENDING)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["sweep", "position"], name="sweep_configuration_position_unique")]

    @property
    def is_finished(self):
        return self.status in FINISHED_CONFIGURATION_STATUSES
