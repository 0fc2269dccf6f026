"""Typed serializers for sweeps, so the OpenAPI schema spells out every field of the comparison."""

from rest_framework import serializers

from unlearning.serializers import CheckpointRefSerializer, DatasetVersionRefSerializer
from versions.api.serializers import CHECKPOINT_REF_HELP, DATASET_VERSION_REF_HELP


class SweepConfigurationRequestSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="gradient_ascent, gradient_difference, kl, npo, simnpo, yao or rmu.")
    hyperparameters = serializers.DictField(required=False, default=dict, help_text="Fixed hyperparameters of every grid point.")
    grid = serializers.DictField(
        child=serializers.ListField(),
        required=False,
        default=dict,
        help_text='Hyperparameters to vary: {"learning_rate": [0.001, 0.003]}; one configuration per combination.',
    )
    seeds = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False, default=[0], help_text="One configuration per seed for each grid point.")
    ranges = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        help_text='optuna only: hyperparameters drawn from a range, {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": true}, '
        '"max_steps": {"low": 2, "high": 8, "step": 2}}; integers when low and high are both integers.',
    )


class SweepCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    parent_checkpoint = serializers.CharField(help_text="The checkpoint every configuration unlearns from: " + CHECKPOINT_REF_HELP)
    forget_dataset_version = serializers.CharField(help_text="The forget set: " + DATASET_VERSION_REF_HELP)
    retain_dataset_version = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None, help_text="The retain set: " + DATASET_VERSION_REF_HELP)
    utility_dataset_version = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, help_text="Held-out benign text for the perplexity ratio: " + DATASET_VERSION_REF_HELP
    )
    configurations = SweepConfigurationRequestSerializer(many=True, allow_empty=False)
    suite_versions = serializers.ListField(
        child=serializers.CharField(), allow_empty=False, help_text="Suites every child is evaluated on against the parent: name@number or name@latest."
    )
    judge = serializers.CharField(required=False, default="lethe-judge")
    judge_config = serializers.DictField(required=False, default=dict)
    generation = serializers.DictField(required=False, default=dict)
    statistics = serializers.DictField(required=False, default=dict, help_text="Tighten the project's gate settings (never loosen).")
    evaluation_seed = serializers.IntegerField(required=False, default=0)
    strategy = serializers.ChoiceField(
        choices=["grid", "random", "optuna"],
        required=False,
        default="grid",
        help_text="grid: every configuration; random: `trials` drawn from the grid with `strategy_seed`; "
        "optuna: `trials` proposed one after another by a multi-objective Optuna study.",
    )
    trials = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    strategy_seed = serializers.IntegerField(required=False, default=0)
    parallelism = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="At most this many configurations unlearning at once (default: all; optuna: 1)."
    )
    budget_steps = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="Total training steps: a configuration that would exceed it is skipped."
    )
    budget_seconds = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="Wall time since the sweep started: configurations not started by then are skipped."
    )


class SweepSeedsAddSerializer(serializers.Serializer):
    seeds = serializers.ListField(child=serializers.IntegerField(min_value=0), allow_empty=False, help_text="New seeds for every method + hyperparameters of the sweep.")


class SweepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="running, finished (every configuration succeeded, failed or was skipped) or cancelled.")
    strategy = serializers.CharField()
    trials = serializers.IntegerField(allow_null=True)
    strategy_seed = serializers.IntegerField()
    parallelism = serializers.IntegerField(allow_null=True)
    budget_steps = serializers.IntegerField(allow_null=True)
    budget_seconds = serializers.IntegerField(allow_null=True)
    parent_checkpoint = CheckpointRefSerializer()
    configuration_count = serializers.IntegerField()
    succeeded_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class SweepRateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(), allow_null=True, help_text="Wilson interval [low, high].")
    successes = serializers.IntegerField()
    trials = serializers.IntegerField()


class SpreadSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(), allow_null=True, help_text="95% t interval of the mean across seeds.")
    n = serializers.IntegerField()
    missing = serializers.IntegerField(help_text="Seeds without a figure (failed).")


class SuiteCellSerializer(serializers.Serializer):
    suite_version = serializers.IntegerField()
    suite = serializers.CharField()
    evaluation = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    verdict = serializers.CharField(allow_blank=True)
    passes_non_inferiority = serializers.BooleanField(allow_null=True)
    asr = SweepRateSerializer(allow_null=True, help_text="The child's attack success rate on this suite.")
    asr_parent = serializers.FloatField(allow_null=True)
    asr_text = SweepRateSerializer(allow_null=True)
    asr_image = SweepRateSerializer(allow_null=True)
    asr_parent_text = SweepRateSerializer(allow_null=True, help_text="The parent's attack success on this suite's text cases.")
    asr_parent_image = SweepRateSerializer(allow_null=True, help_text="The parent's attack success on this suite's image+text cases.")
    transfer_ratio = serializers.FloatField(allow_null=True, help_text="Image ASR / text ASR of the child.")
    over_refusal = SweepRateSerializer(allow_null=True)
    failure_to_help = SweepRateSerializer(allow_null=True)
    harmful_non_answer = SweepRateSerializer(allow_null=True)
    benign_non_answer = SweepRateSerializer(allow_null=True)
    perplexity_ratio = serializers.FloatField(allow_null=True, help_text="Held-out perplexity, child / parent.")
    gate_passes = serializers.BooleanField(allow_null=True)
    gate_failures = serializers.ListField(child=serializers.CharField())
    on_frontier = serializers.BooleanField(help_text="On this suite's Pareto frontier of ASR against failure to help.")
    on_utility_frontier = serializers.BooleanField(help_text="On this suite's Pareto frontier of ASR against utility loss (perplexity ratio).")


class ComparisonCheckpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    number = serializers.IntegerField()


class ComparisonRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    method = serializers.CharField()
    hyperparameters = serializers.JSONField()
    seed = serializers.IntegerField()
    group = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    branch_label = serializers.CharField()
    unlearning_run = serializers.IntegerField(allow_null=True, help_text="None until the configuration starts.")
    run = serializers.IntegerField(allow_null=True)
    run_status = serializers.CharField(allow_null=True)
    planned_steps = serializers.IntegerField(help_text="Its max_steps: what a training-step budget counts.")
    checkpoint = ComparisonCheckpointSerializer(allow_null=True)
    weight_change = serializers.FloatField(allow_null=True, help_text="Frobenius norm of the whole weight change.")
    suites = SuiteCellSerializer(many=True)


class GroupSuiteSerializer(serializers.Serializer):
    suite = serializers.CharField()
    asr = SpreadSerializer()
    failure_to_help = SpreadSerializer()
    perplexity_ratio = SpreadSerializer()


class GroupSerializer(serializers.Serializer):
    group = serializers.CharField()
    method = serializers.CharField()
    hyperparameters = serializers.JSONField()
    configurations = serializers.ListField(child=serializers.IntegerField())
    seeds = serializers.ListField(child=serializers.IntegerField())
    suites = GroupSuiteSerializer(many=True)
    weight_change = SpreadSerializer()


class PooledRateSerializer(serializers.Serializer):
    value = serializers.FloatField()
    successes = serializers.IntegerField()
    trials = serializers.IntegerField()


class MethodSummarySerializer(serializers.Serializer):
    method = serializers.CharField()
    configuration = serializers.IntegerField(allow_null=True, help_text="Its best configuration (lowest ASR averaged over suites, then failure to help).")
    position = serializers.IntegerField(allow_null=True)
    text_asr_before = PooledRateSerializer(allow_null=True, help_text="The parent's ASR on text attacks, pooled over the suites.")
    text_asr_after = PooledRateSerializer(allow_null=True)
    image_asr_before = PooledRateSerializer(allow_null=True, help_text="The parent's ASR on image+text attacks, pooled over the suites.")
    image_asr_after = PooledRateSerializer(allow_null=True)
    perplexity_ratio = serializers.FloatField(allow_null=True, help_text="Held-out perplexity, child / parent.")


class ComparisonSerializer(serializers.Serializer):
    suites = serializers.ListField(child=serializers.CharField())
    rows = ComparisonRowSerializer(many=True)
    groups = GroupSerializer(many=True)
    best_per_method = serializers.ListField(child=serializers.DictField(child=serializers.IntegerField()), help_text="Per suite: {method: configuration id}.")
    frontier = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), help_text="Per suite: configuration ids on the Pareto frontier (ASR vs failure to help)."
    )
    utility_frontier = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), help_text="Per suite: configuration ids on the Pareto frontier (ASR vs perplexity ratio)."
    )
    method_summary = MethodSummarySerializer(many=True, help_text="Per method, from its best configuration: text and image ASR before and after, utility.")


class SweepDetailSerializer(SweepSerializer):
    forget_dataset_version = DatasetVersionRefSerializer()
    retain_dataset_version = DatasetVersionRefSerializer(allow_null=True)
    utility_dataset_version = DatasetVersionRefSerializer(allow_null=True)
    configurations_requested = serializers.JSONField()
    judge = serializers.CharField()
    judge_config = serializers.JSONField()
    generation = serializers.JSONField()
    statistics = serializers.JSONField()
    evaluation_seed = serializers.IntegerField()
    comparison = ComparisonSerializer()
