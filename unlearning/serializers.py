from rest_framework import serializers

from versions.api.serializers import CHECKPOINT_REF_HELP, DATASET_VERSION_REF_HELP


class UnlearningRunCreateSerializer(serializers.Serializer):
    parent_checkpoint = serializers.CharField(help_text="The checkpoint to unlearn from: " + CHECKPOINT_REF_HELP)
    method = serializers.CharField(help_text="gradient_ascent, gradient_difference, kl, npo, simnpo, yao or rmu.")
    hyperparameters = serializers.DictField(required=False, default=dict, help_text="Training and method hyperparameters; defaults filled in.")
    forget_dataset_version = serializers.CharField(help_text="The forget set: " + DATASET_VERSION_REF_HELP)
    retain_dataset_version = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, help_text="The retain set, for methods that need one: " + DATASET_VERSION_REF_HELP
    )
    seed = serializers.IntegerField(required=False, default=0)
    branch_label = serializers.CharField(required=False, allow_blank=True, default="", help_text="A branch label that follows the run's output.")


class CheckpointRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    number = serializers.IntegerField()
    kind = serializers.CharField()


class ProducedCheckpointSerializer(CheckpointRefSerializer):
    weight_change = serializers.JSONField()
    metadata = serializers.JSONField()


class DatasetVersionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.name")
    number = serializers.IntegerField()
    sha256 = serializers.CharField()


class UnlearningRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    run = serializers.IntegerField(source="run_id")
    status = serializers.CharField(source="run.status")
    progress = serializers.FloatField(source="run.progress")
    progress_message = serializers.CharField(source="run.progress_message")
    error = serializers.CharField(source="run.error")
    cancel_requested = serializers.BooleanField(source="run.cancel_requested")
    created_by = serializers.CharField(source="run.created_by.username")
    created_at = serializers.DateTimeField(source="run.created_at")
    finished_at = serializers.DateTimeField(source="run.finished_at", allow_null=True)
    method = serializers.CharField()
    hyperparameters = serializers.JSONField()
    seed = serializers.IntegerField()
    branch_label = serializers.CharField()
    parent_checkpoint = CheckpointRefSerializer()
    forget_dataset_version = DatasetVersionRefSerializer()
    retain_dataset_version = DatasetVersionRefSerializer(allow_null=True)
    current_step = serializers.IntegerField()
    produced_checkpoint = ProducedCheckpointSerializer(allow_null=True)


class UnlearningRunDetailSerializer(UnlearningRunSerializer):
    loss_curve = serializers.JSONField(help_text='[{"step": 1, "loss": ..., "forget_nll": ..., ...}]: each term apart.')
