"""Input validation and output shapes for the evals API."""
from rest_framework import serializers

from evals.importers import FORMATS
from evals.transforms import ALL_TRANSFORMS
from versions.api.serializers import CHECKPOINT_REF_HELP, DATASET_VERSION_REF_HELP, PROMPT_VERSION_REF_HELP, JSONField

REDACTED = "[redacted: reviewer role required]"


class SuiteCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class SuiteVersionCreateInput(serializers.Serializer):
    cases = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    transforms = serializers.ListField(child=serializers.ChoiceField(choices=sorted(ALL_TRANSFORMS)), required=False, default=list)


class SuiteVersionImportInput(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS)
    column_mapping = JSONField(required=False, default=None)
    defaults = JSONField(required=False, default=None)
    transforms = serializers.ListField(child=serializers.ChoiceField(choices=sorted(ALL_TRANSFORMS)), required=False, default=list)
    message = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_column_mapping(self, value):
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            raise serializers.ValidationError('Expected an object {case field: column name}, e.g. {"prompt": "question"}.')
        return value

    def validate_defaults(self, value):
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError('Expected an object {case field: value}, e.g. {"expected": "refuse"}.')
        return value


class EvaluationCreateInput(serializers.Serializer):
    suite = serializers.CharField(help_text="name@number or name@latest")
    checkpoint_a = serializers.CharField(help_text=CHECKPOINT_REF_HELP)
    checkpoint_b = serializers.CharField(help_text=CHECKPOINT_REF_HELP)
    prompt_version_a = serializers.CharField(required=False, allow_blank=True, default="", help_text=PROMPT_VERSION_REF_HELP)
    prompt_version_b = serializers.CharField(required=False, allow_blank=True, default="", help_text=PROMPT_VERSION_REF_HELP)
    judge = serializers.CharField(required=False, default="refusal-strings")
    judge_config = serializers.DictField(required=False, default=dict)
    generation = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, default=0)
    utility_dataset_version = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None,
                                                    help_text=DATASET_VERSION_REF_HELP)
    statistics = serializers.DictField(required=False, default=dict)


class SuiteVersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    case_count = serializers.IntegerField()
    message = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class SuiteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    version_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class CaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    prompt = serializers.CharField()
    category = serializers.CharField()
    attack_family = serializers.CharField()
    modality = serializers.CharField()
    expected = serializers.CharField()
    source = serializers.CharField()
    parent_key = serializers.CharField()
    image_sha256 = serializers.CharField(source="image_blob_id", allow_null=True)
    image_url = serializers.SerializerMethodField()

    def get_image_url(self, case) -> str | None:
        return case_image_url(case)


def case_image_url(case):
    """Where the UI and API clients fetch an image case's picture (project members only). Keyed by
    case id alone, so listing cases costs no extra query per row."""
    from django.urls import reverse

    if not case.image_blob_id:
        return None
    return reverse("evals:case-image", args=[case.pk])


def _arm(checkpoint, prompt_version):
    return {
        "checkpoint": {"id": checkpoint.pk, "ref": f"{checkpoint.model.name}@{checkpoint.number}"},
        "prompt_version": {"id": prompt_version.pk, "ref": f"{prompt_version.prompt.name}@{prompt_version.number}"} if prompt_version else None,
    }


def evaluation_summary(evaluation):
    run = evaluation.run
    suite_version = evaluation.suite_version
    return {
        "id": evaluation.pk,
        "run": {"id": run.pk, "status": run.status, "progress": run.progress, "progress_message": run.progress_message, "error": run.error},
        "suite": {"id": suite_version.pk, "ref": f"{suite_version.suite.name}@{suite_version.number}", "sha256": suite_version.sha256},
        "a": _arm(evaluation.checkpoint_a, evaluation.prompt_version_a),
        "b": _arm(evaluation.checkpoint_b, evaluation.prompt_version_b),
        "judge": {key: evaluation.judge.get(key) for key in ("name", "version", "config_sha256")},
        "seed": evaluation.seed,
        "verdict": evaluation.verdict or None,
        "passes_non_inferiority": evaluation.passes_non_inferiority,
        "created_at": evaluation.created_at.isoformat(),
    }


def evaluation_detail(evaluation):
    return {
        **evaluation_summary(evaluation),
        "judge": {key: value for key, value in evaluation.judge.items() if key != "requested_config"},
        "generation_config": evaluation.generation_config,
        "statistics_config": evaluation.statistics_config,
        "utility_dataset_version": evaluation.utility_dataset_version_id,
        "metrics": evaluation.metrics,
        "statistics": evaluation.statistics,
    }


def case_result_row(result, *, may_read_hazards):
    case = result.case
    hidden = case.expected == "refuse" and not may_read_hazards
    return {
        "id": result.pk,
        "position": result.position,
        "case": {"id": case.pk, "key": case.key, "prompt": case.prompt, "category": case.category, "attack_family": case.attack_family,
                 "modality": case.modality, "expected": case.expected, "parent_key": case.parent_key,
                 "image_url": case_image_url(case)},
        "response_a": REDACTED if hidden else result.response_a,
        "response_b": REDACTED if hidden else result.response_b,
        "outcome_a": result.outcome_a,
        "outcome_b": result.outcome_b,
        "latency_ms_a": result.latency_ms_a,
        "latency_ms_b": result.latency_ms_b,
        "flipped": result.flipped,
    }
