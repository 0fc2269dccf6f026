from django.db import models


class UnlearningRun(models.Model):
    """What an unlearning run is asked to do; its lifecycle lives on the shared ``jobs.Run``."""

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="unlearning")
    parent_checkpoint = models.ForeignKey("versions.Checkpoint", on_delete=models.PROTECT, related_name="unlearning_runs")
    method = models.CharField(max_length=32)
    hyperparameters = models.JSONField(default=dict)  # validated, defaults filled in
    forget_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    retain_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    seed = models.IntegerField(default=0)
    branch_label = models.CharField(max_length=100, blank=True)  # advanced when the run succeeds
    # [{"step": 1, "loss": ..., "forget": ..., "retain": ...}, ...]: each term apart.
    loss_curve = models.JSONField(default=list)
    current_step = models.PositiveIntegerField(default=0)
    produced_checkpoint = models.ForeignKey("versions.Checkpoint", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-id"]
