"""Input validation and output shapes of the judge calibration API. Outputs are built as plain
dicts by the functions below and rendered through these serializers, so the OpenAPI schema says
exactly what is sent."""

from rest_framework import serializers

from evals.judgement_sets import FORMATS
from evals.serializers import REDACTED, AgreementByExpectedOutput, KappaOutput, RateOutput


class JudgementSetImportInput(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, help_text="jsonl / csv (Lethe's columns, or a column_mapping), or a public layout.")
    column_mapping = serializers.JSONField(required=False, default=None, help_text='{field: column}, e.g. {"response": "generation"} (jsonl and csv only).')
    label_mapping = serializers.JSONField(required=False, default=None, help_text='{value in the file: human label}, e.g. {"1": "attack_success"}.')
    defaults = serializers.JSONField(required=False, default=None, help_text='{field: value} for fields a row leaves empty, e.g. {"model": "gpt4"}.')
    message = serializers.CharField(required=False, allow_blank=True, default="")

    def _object_of_strings(self, value, example):
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            raise serializers.ValidationError(f"Expected an object of strings, e.g. {example}.")
        return value

    def validate_column_mapping(self, value):
        return self._object_of_strings(value, '{"response": "generation"}')

    def validate_label_mapping(self, value):
        return self._object_of_strings(value, '{"1": "attack_success", "0": "not_attack_success"}')

    def validate_defaults(self, value):
        return self._object_of_strings(value, '{"expected": "refuse"}')


class CalibrationCreateInput(serializers.Serializer):
    set = serializers.CharField(max_length=220, help_text="The judgements dataset version: name@number or name@latest.")
    judge = serializers.CharField(max_length=64, required=False, default="refusal-strings")
    judge_config = serializers.DictField(required=False, default=dict)


class PrecisionRecallOutput(serializers.Serializer):
    precision = RateOutput()
    recall = RateOutput()


class CalibrationMetricsOutput(serializers.Serializer):
    n = serializers.IntegerField()
    agreement = RateOutput()
    agreement_by_expected = AgreementByExpectedOutput()
    kappa = KappaOutput()
    refusal = PrecisionRecallOutput()
    attack_success = PrecisionRecallOutput()
    confusion = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()), help_text="Human label -> judge outcome -> count.")
    judge_errors = serializers.IntegerField()
    confidence = serializers.FloatField()


class CalibrationRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    progress_message = serializers.CharField()
    error = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class JudgementSetRefOutput(serializers.Serializer):
    dataset = serializers.CharField()
    version = serializers.IntegerField()
    ref = serializers.CharField(help_text="name@number")
    sha256 = serializers.CharField()
    row_count = serializers.IntegerField()


class JudgePinOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    config_sha256 = serializers.CharField()
    config = serializers.DictField()


class CalibrationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    run = CalibrationRunOutput()
    set = JudgementSetRefOutput()
    judge = JudgePinOutput()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    agreement = RateOutput(allow_null=True, help_text="Agreement with humans on every row; null until the run has succeeded.")
    disagreement_count = serializers.IntegerField()


class CalibrationDetailOutput(CalibrationOutput):
    metrics = CalibrationMetricsOutput(allow_null=True, help_text="Null until the run has succeeded.")


class DisagreementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    rank = serializers.IntegerField()
    row_number = serializers.IntegerField(help_text="The row's 1-based position in the set version.")
    key = serializers.CharField()
    category = serializers.CharField()
    expected = serializers.CharField()
    prompt = serializers.CharField()
    response = serializers.CharField(help_text=f"Responses to harmful requests read {REDACTED!r} below the reviewer role.")
    redacted = serializers.BooleanField()
    human = serializers.CharField()
    judged = serializers.CharField()
    detail = serializers.CharField(help_text="The judge's own explanation (e.g. an error); empty where the response is redacted.")


def calibration_row(calibration) -> dict:
    """The list shape; needs the calibration's run (with its creator) and set version (with its dataset)."""
    run, version = calibration.run, calibration.dataset_version
    finished = run.status == "succeeded" and bool(calibration.metrics)
    return {
        "id": calibration.pk,
        "run": {"id": run.pk, "status": run.status, "progress": run.progress, "progress_message": run.progress_message, "error": run.error, "finished_at": run.finished_at},
        "set": {
            "dataset": version.dataset.name,
            "version": version.number,
            "ref": f"{version.dataset.name}@{version.number}",
            "sha256": version.sha256,
            "row_count": version.row_count,
        },
        "judge": {key: calibration.judge.get(key) for key in ("name", "version", "config_sha256", "config")},
        "created_by": run.created_by.username,
        "created_at": calibration.created_at,
        "agreement": calibration.metrics["agreement"] if finished else None,
        "disagreement_count": calibration.disagreement_count,
    }


def calibration_detail_row(calibration) -> dict:
    row = calibration_row(calibration)
    row["metrics"] = calibration.metrics if row["agreement"] is not None else None
    return row


def disagreement_row(item, *, may_read_hazards) -> dict:
    hidden = not may_read_hazards  # any response may be harmful, whatever its row's `expected` says
    return {
        "id": item.pk,
        "rank": item.rank,
        "row_number": item.row_number,
        "key": item.key,
        "category": item.category,
        "expected": item.expected,
        "prompt": item.prompt,
        "response": REDACTED if hidden else item.response,
        "redacted": hidden,
        # The judge's detail may quote the response (a model judge's own words): hidden with it.
        "human": item.human,
        "judged": item.judged,
        "detail": "" if hidden else item.detail,
    }
