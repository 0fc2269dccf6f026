"""Input validation and output shapes for the evals API."""

from rest_framework import serializers
from rest_framework.fields import SkipField

from evals.importers import FORMATS
from evals.models import Expected, Modality, Outcome, Verdict
from evals.judges import DEFAULT_JUDGE
from evals.transforms import ALL_TRANSFORMS
from versions.api.serializers import CHECKPOINT_REF_HELP, DATASET_VERSION_REF_HELP, PROMPT_VERSION_REF_HELP, JSONField

REDACTED = "[redacted: reviewer role required]"


class StoredFloatField(serializers.FloatField):
    """A number rendered exactly as stored (FloatField would turn a stored 1 into 1.0), and, when
    not required, left out where the stored object has no such key (a nullable field would add
    it as null): the schema gets the type, the body stays what it always was."""

    def get_attribute(self, instance):
        if not self.required and isinstance(instance, dict) and self.source not in instance:
            raise SkipField()
        return super().get_attribute(instance)

    def to_representation(self, value):
        return value


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
    judge = serializers.CharField(required=False, default=DEFAULT_JUDGE)
    judge_config = serializers.DictField(required=False, default=dict)
    generation = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, default=0)
    utility_dataset_version = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None, help_text=DATASET_VERSION_REF_HELP)
    statistics = serializers.DictField(required=False, default=dict)


class SuiteVersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    case_count = serializers.IntegerField()
    message = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    benign_marked_by = serializers.CharField(
        source="benign_marked_by.username", allow_null=True, default=None, help_text="The reviewer who marked this version benign; null when it is not."
    )
    benign_marked_at = serializers.DateTimeField(allow_null=True)


class SuiteVersionBenignInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000, help_text="Recorded in the audit trail.")


class SuiteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    version_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class SuiteDetailOutput(SuiteOutput):
    versions = SuiteVersionOutput(many=True, help_text="Every version, newest first.")


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


# ---------------------------------------------------------------- evaluation report shapes
# The API's evaluation answers are built as plain dicts (evaluation_summary / evaluation_detail,
# also used by the CLI and the demo) and passed through these serializers, so the OpenAPI schema
# describes every field and a shape change fails the schema tests.


def _interval(**kwargs):
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True, **kwargs)


class RateOutput(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    successes = serializers.IntegerField()
    trials = serializers.IntegerField()
    ci = _interval(help_text="Wilson score interval")


class OutcomeCountsOutput(serializers.Serializer):
    attack_success = serializers.IntegerField()
    refused = serializers.IntegerField()
    complied = serializers.IntegerField()
    over_refusal = serializers.IntegerField()
    non_answer = serializers.IntegerField()
    error = serializers.IntegerField()


class HarmfulCountsOutput(serializers.Serializer):
    attack_success = serializers.IntegerField()
    refused = serializers.IntegerField()
    non_answer = serializers.IntegerField()
    error = serializers.IntegerField()


class BenignCountsOutput(serializers.Serializer):
    complied = serializers.IntegerField()
    over_refusal = serializers.IntegerField()
    non_answer = serializers.IntegerField()
    error = serializers.IntegerField()


class CountsByExpectedOutput(serializers.Serializer):
    refuse = HarmfulCountsOutput()
    comply = BenignCountsOutput()


class RatesOutput(serializers.Serializer):
    cases = serializers.IntegerField()
    counts = OutcomeCountsOutput()
    counts_by_expected = CountsByExpectedOutput()
    asr = RateOutput(help_text="attack_success / harmful cases without an error")
    harmful_non_answer_rate = RateOutput()
    over_refusal_rate = RateOutput(help_text="over_refusal / benign cases without an error")
    benign_non_answer_rate = RateOutput()
    failure_to_help_rate = RateOutput(help_text="(over_refusal + non_answer) / benign cases without an error")
    refusal_rate = RateOutput(help_text="(refused + over_refusal) / all cases without an error")
    error_rate = RateOutput(help_text="error / all cases")


class UtilityOutput(serializers.Serializer):
    perplexity = serializers.FloatField(allow_null=True)
    texts = serializers.IntegerField()
    tokens = serializers.IntegerField()


class JudgeSummaryOutput(serializers.Serializer):
    judged = serializers.IntegerField()
    uncertain = serializers.IntegerField(help_text="judgements the judge itself marked unreliable")
    escalated = serializers.IntegerField(help_text="cases a cascade re-judged with its second judge")
    escalations = serializers.DictField(child=serializers.IntegerField(), help_text="escalated cases by reason")
    names_categories = serializers.BooleanField(help_text="whether this judge names hazard categories at all")
    categories = serializers.DictField(child=serializers.IntegerField(), help_text="hazard category code -> cases")
    category_names = serializers.DictField(child=serializers.CharField())


class ArmMetricsOutput(serializers.Serializer):
    overall = RatesOutput()
    by_category = serializers.DictField(child=RatesOutput())
    by_attack_family = serializers.DictField(child=RatesOutput())
    by_modality = serializers.DictField(child=RatesOutput())
    utility = UtilityOutput()
    judge = JudgeSummaryOutput(required=False, help_text="what the judge said beyond outcomes; absent for evaluations run before it was kept")


class MetricsOutput(serializers.Serializer):
    A = ArmMetricsOutput()
    B = ArmMetricsOutput()


class PairedTestOutput(serializers.Serializer):
    n_pairs = serializers.IntegerField(help_text="cases neither arm errored")
    a_only = serializers.IntegerField(help_text="A failed, B did not")
    b_only = serializers.IntegerField(help_text="B failed, A did not")
    rate_a = serializers.FloatField(allow_null=True)
    rate_b = serializers.FloatField(allow_null=True)
    difference = serializers.FloatField(allow_null=True, help_text="rate_B - rate_A")
    difference_ci = _interval()
    p_value = serializers.FloatField(help_text="McNemar exact, two-sided")
    p_value_holm = serializers.FloatField(allow_null=True)
    ci_method = serializers.CharField()


class NonInferiorityOutput(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["failure_to_help", "perplexity_ratio"])
    margin = serializers.FloatField()
    estimate = serializers.FloatField(allow_null=True)
    ci = _interval()
    passes = serializers.BooleanField(help_text="upper bound of ci < margin")
    reason = serializers.CharField()
    method = serializers.CharField()


class ArmNonAnswersOutput(serializers.Serializer):
    harmful = serializers.IntegerField()
    benign = serializers.IntegerField()


class NonAnswersOutput(serializers.Serializer):
    A = ArmNonAnswersOutput()
    B = ArmNonAnswersOutput()


class CoverageOutput(serializers.Serializer):
    cases = serializers.IntegerField()
    errors_a = serializers.IntegerField()
    errors_b = serializers.IntegerField()
    error_share_a = serializers.FloatField(allow_null=True)
    error_share_b = serializers.FloatField(allow_null=True)
    max_error_share = serializers.FloatField()
    harmful_pairs = serializers.IntegerField()
    benign_pairs = serializers.IntegerField()
    min_harmful_cases = serializers.IntegerField()
    min_benign_cases = serializers.IntegerField()
    non_answers = NonAnswersOutput()
    inconclusive_reasons = serializers.ListField(child=serializers.CharField(), help_text="why the verdict is inconclusive; empty otherwise")


class StatisticsConfigOutput(serializers.Serializer):
    alpha = serializers.FloatField()
    bootstrap_resamples = serializers.IntegerField()
    confidence = serializers.FloatField()
    failure_to_help_margin = serializers.FloatField()
    perplexity_ratio_margin = serializers.FloatField()
    max_error_share = serializers.FloatField()
    min_harmful_cases = serializers.IntegerField()
    min_benign_cases = serializers.IntegerField()
    seed = serializers.IntegerField()


class ModalityResultOutput(serializers.Serializer):
    modality = serializers.CharField()
    asr_a = RateOutput()
    asr_b = RateOutput()
    paired = PairedTestOutput()


class TransferOutput(serializers.Serializer):
    ratio = serializers.FloatField(allow_null=True)
    ci = _interval()
    text_gain = serializers.FloatField(allow_null=True)
    image_gain = serializers.FloatField(allow_null=True)
    text_gain_ci = _interval()
    image_gain_ci = _interval()
    undefined_reason = serializers.CharField(allow_blank=True)
    ci_note = serializers.CharField(allow_blank=True)
    ci_method = serializers.CharField()
    summary = serializers.CharField()


class CrossModalOutput(serializers.Serializer):
    by_modality = serializers.DictField(child=ModalityResultOutput())
    transfer = TransferOutput()


class StatisticsOutput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    reasons = serializers.ListField(child=serializers.CharField())
    asr = PairedTestOutput()
    asr_by_category = serializers.DictField(child=PairedTestOutput())
    failure_to_help = PairedTestOutput()
    non_inferiority = NonInferiorityOutput(many=True)
    passes_non_inferiority = serializers.BooleanField()
    coverage = CoverageOutput()
    flipped_to_unsafe = serializers.ListField(child=serializers.CharField())
    flipped_to_safe = serializers.ListField(child=serializers.CharField())
    config = StatisticsConfigOutput()
    cross_modal = CrossModalOutput(allow_null=True)


class JudgeSpendOutput(serializers.Serializer):
    judged_cases = serializers.IntegerField()
    requests = serializers.IntegerField(help_text="requests sent, retries included")
    latency_ms_total = serializers.FloatField()
    latency_ms_mean = serializers.FloatField(allow_null=True)
    prompt_tokens = serializers.IntegerField(required=False)
    completion_tokens = serializers.IntegerField(required=False)
    total_tokens = serializers.IntegerField(required=False)


class EndpointCaseTimingOutput(serializers.Serializer):
    key = serializers.CharField()
    latency_ms = serializers.FloatField()
    attempts = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField(required=False)
    completion_tokens = serializers.IntegerField(required=False)
    total_tokens = serializers.IntegerField(required=False)
    error = serializers.CharField(required=False, help_text="why the case has no answer after the retries (its outcome is error)")


class EndpointSpendOutput(serializers.Serializer):
    profile = serializers.CharField()
    model = serializers.CharField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    retries = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    mean_latency_ms = serializers.FloatField(allow_null=True)
    resumed = serializers.IntegerField(required=False, help_text="cases answered by the failed or cancelled run this one retries, not asked again")
    cases = EndpointCaseTimingOutput(many=True)


class ArmTimingOutput(serializers.Serializer):
    mean_latency_ms = serializers.FloatField()
    judge = JudgeSpendOutput(required=False, help_text="what a remote judge spent on this arm")
    endpoint = EndpointSpendOutput(required=False, help_text="an endpoint arm's requests: per case latency, attempts, token usage, errors")


class TimingsOutput(serializers.Serializer):
    A = ArmTimingOutput()
    B = ArmTimingOutput()


class EndpointModelOutput(serializers.Serializer):
    id = serializers.CharField()
    owned_by = serializers.CharField(required=False)
    created = serializers.IntegerField(required=False)
    root = serializers.CharField(required=False, allow_null=True)
    parent = serializers.CharField(required=False, allow_null=True)
    max_model_len = serializers.IntegerField(required=False, allow_null=True)


class EndpointFingerprintOutput(serializers.Serializer):
    profile = serializers.CharField()
    model = serializers.CharField(help_text="the model name requests asked for (the LoRA adapter's when the checkpoint names one)")
    models = EndpointModelOutput(many=True, required=False, help_text="GET /v1/models as the server listed them")
    model_listed = serializers.BooleanField(required=False, help_text="whether the model asked for is among them")
    headers = serializers.DictField(child=serializers.CharField(), required=False, help_text="version headers of the /models answer (server, openai-version, x-vllm-version, ...)")
    chat_headers = serializers.DictField(child=serializers.CharField(), required=False, help_text="version headers of the chat answers")
    error = serializers.CharField(required=False, help_text="why /models could not be read (no reason to stop the run)")


class EndpointFingerprintsOutput(serializers.Serializer):
    A = EndpointFingerprintOutput(required=False)
    B = EndpointFingerprintOutput(required=False)


class RunBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    progress_message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


class SuiteRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ref = serializers.CharField()
    sha256 = serializers.CharField()


class VersionRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ref = serializers.CharField()


class ArmOutput(serializers.Serializer):
    checkpoint = VersionRefOutput()
    prompt_version = VersionRefOutput(allow_null=True)


class JudgeBriefOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    config_sha256 = serializers.CharField()


class JudgeOutput(JudgeBriefOutput):
    config = serializers.DictField()


class PromotionGateAnswerOutput(serializers.Serializer):
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["prompt", "model"])
    owner = serializers.CharField(help_text="the model or prompt the label is on")
    target = serializers.IntegerField(allow_null=True, help_text="B's checkpoint or prompt version number")
    gated = serializers.BooleanField(
        help_text="whether moving this label asks the gate (protected, and the project requires evidence); when false the label moves whatever `passes` says"
    )
    passes = serializers.BooleanField()
    failures = serializers.ListField(child=serializers.CharField(), help_text="why the gate refuses; empty when it passes")


class EvaluationSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    run = RunBriefOutput()
    suite = SuiteRefOutput()
    a = ArmOutput()
    b = ArmOutput()
    judge = JudgeBriefOutput()
    seed = serializers.IntegerField()
    verdict = serializers.ChoiceField(choices=Verdict.choices, allow_null=True, help_text="null until it finishes")
    passes_non_inferiority = serializers.BooleanField(allow_null=True)
    report_sha256 = serializers.CharField(allow_null=True, help_text="sha256 of the canonical JSON of the report's content; equal for reruns of the same evaluation")
    created_at = serializers.DateTimeField()
    decision = serializers.CharField(
        allow_null=True,
        help_text="the decision in one line (as the report, dashboard, list and CLI show it): the attack-success "
        "finding, each non-inferiority check and the promotion gate's answer per label arm A holds; null until it finishes",
    )
    promotion_gate = PromotionGateAnswerOutput(
        many=True,
        allow_null=True,
        help_text="per label arm A's version holds: the promotion gate's answer for moving it to B's "
        "version citing this evaluation (empty: no label to move); null until it finishes",
    )


class AgreementByExpectedOutput(serializers.Serializer):
    refuse = RateOutput(required=False, help_text="On harmful requests: is it an attack success?")
    comply = RateOutput(required=False, help_text="On benign requests: did the model help?")


class KappaOutput(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    ci = _interval(help_text="Seeded percentile bootstrap interval.")


class MatchedCalibrationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    judge_version = serializers.CharField(allow_null=True, help_text="the judge's version when it was calibrated")
    n = serializers.IntegerField(help_text="labelled responses")
    agreement = RateOutput()
    agreement_by_expected = AgreementByExpectedOutput()
    kappa = KappaOutput()
    calibrated_at = serializers.DateTimeField(allow_null=True)


class JudgeCalibrationStatusOutput(serializers.Serializer):
    setting = serializers.CharField(allow_blank=True, help_text="the project's calibration_set setting")
    set = serializers.CharField(allow_null=True, help_text="the set version it resolves to (name@number)")
    judge = JudgeBriefOutput()
    calibration = MatchedCalibrationOutput(allow_null=True, help_text="the newest finished calibration of this exact judge pin on that set")
    reason = serializers.ChoiceField(choices=["no_set", "no_version", "set_missing", "not_calibrated"], allow_null=True, help_text="why there is no calibration")
    error = serializers.CharField(required=False)


class GenerationConfigOutput(serializers.Serializer):
    """The evaluation's generation settings (mlcore.generation.GenerationConfig, every field)."""

    max_new_tokens = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    do_sample = serializers.BooleanField()
    temperature = StoredFloatField()
    top_p = StoredFloatField()
    max_prompt_tokens = serializers.IntegerField(help_text="Longer prompts keep their right end.")


class EvaluationDetailOutput(EvaluationSummaryOutput):
    judge = JudgeOutput()
    judge_calibration = JudgeCalibrationStatusOutput(help_text="the judge's calibration on the project's calibration set")
    generation_config = GenerationConfigOutput()
    statistics_config = StatisticsConfigOutput()
    utility_dataset_version = serializers.IntegerField(allow_null=True)
    metrics = MetricsOutput(allow_null=True, help_text="null until it finishes")
    statistics = StatisticsOutput(allow_null=True, help_text="null until it finishes")
    findings = serializers.ListField(
        child=serializers.CharField(),
        help_text="attack families and categories that regressed, and the up to 3 others with the least improvement, in words (evals.reporting.findings); empty until it finishes",
    )
    timings = TimingsOutput(allow_null=True, help_text="what depends on the run, kept out of the report: null until it finishes")
    endpoint_fingerprints = EndpointFingerprintsOutput(
        help_text="what answered each endpoint arm, recorded when the run used it (GET /v1/models, version headers); "
        "run-dependent, kept out of the report and its hash; {} without endpoint arms or until it finishes"
    )


def _arm(checkpoint, prompt_version):
    return {
        "checkpoint": {"id": checkpoint.pk, "ref": f"{checkpoint.model.name}@{checkpoint.number}"},
        "prompt_version": {"id": prompt_version.pk, "ref": f"{prompt_version.prompt.name}@{prompt_version.number}"} if prompt_version else None,
    }


GATE_ANSWER_FIELDS = ("label", "kind", "owner", "target", "gated", "passes", "failures")


def evaluation_decision(evaluation, *, project=None):
    """The decision of one evaluation (evals.selectors.evaluation_decisions); lists read them for
    a whole page at once and pass each to ``evaluation_summary``."""
    from evals.selectors import evaluation_decisions

    return evaluation_decisions(project=project or evaluation.project, evaluations=[evaluation])[evaluation.pk]


def _summary(evaluation, decision=None):
    if decision is None:
        decision = evaluation_decision(evaluation)
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
        "report_sha256": evaluation.report_sha256 or None,
        "created_at": evaluation.created_at.isoformat(),
        "decision": decision["line"] or None,
        "promotion_gate": (None if decision["gate"] is None else [{key: answer[key] for key in GATE_ANSWER_FIELDS} for answer in decision["gate"]]),
    }


def evaluation_summary(evaluation, decision=None):
    """``decision``: this evaluation's entry of evals.selectors.evaluation_decisions, when the
    caller read them for many evaluations; otherwise it is read here."""
    return EvaluationSummaryOutput(_summary(evaluation, decision)).data


def evaluation_detail(evaluation):
    from evals.calibration_selectors import judge_calibration_status
    from evals.reporting import findings

    return EvaluationDetailOutput(
        {
            **_summary(evaluation),
            "findings": findings(evaluation.metrics) if evaluation.verdict else [],
            "judge": {key: value for key, value in evaluation.judge.items() if key != "requested_config"},
            "judge_calibration": judge_calibration_status(project=evaluation.project, judge=evaluation.judge),
            "generation_config": evaluation.generation_config,
            "statistics_config": evaluation.statistics_config,
            "utility_dataset_version": evaluation.utility_dataset_version_id,
            "metrics": evaluation.metrics or None,
            "statistics": evaluation.statistics or None,
            "timings": evaluation.timings or None,
            "endpoint_fingerprints": evaluation.endpoint_fingerprints or {},
        }
    ).data


def case_result_row(result, *, readable):
    """One case result; its responses are replaced by REDACTED (and ``redacted`` is true) unless
    ``readable`` (evals.hazards.responses_readable)."""
    case = result.case
    return {
        "id": result.pk,
        "position": result.position,
        "case": {
            "id": case.pk,
            "key": case.key,
            "prompt": case.prompt,
            "category": case.category,
            "attack_family": case.attack_family,
            "modality": case.modality,
            "expected": case.expected,
            "parent_key": case.parent_key,
            "image_url": case_image_url(case),
        },
        "response_a": result.response_a if readable else REDACTED,
        "response_b": result.response_b if readable else REDACTED,
        "redacted": not readable,
        "outcome_a": result.outcome_a,
        "outcome_b": result.outcome_b,
        "latency_ms_a": result.latency_ms_a,
        "latency_ms_b": result.latency_ms_b,
        "flipped": result.flipped,
        # The judge's record per arm: detail, confidence, uncertain, categories, escalation ({} before 0005).
        "judge_a": result.judge_detail_a,
        "judge_b": result.judge_detail_b,
    }


class CaseResultCaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    prompt = serializers.CharField()
    category = serializers.CharField()
    attack_family = serializers.CharField()
    modality = serializers.ChoiceField(choices=Modality.choices)
    expected = serializers.ChoiceField(choices=Expected.choices)
    parent_key = serializers.CharField(allow_blank=True)
    image_url = serializers.CharField(allow_null=True)


class JudgeRecordOutput(serializers.Serializer):
    """One arm's judge record of a case (evals.judge_records.judgement_record). Every key is
    absent until the case is judged."""

    detail = serializers.CharField(required=False, allow_blank=True, help_text="What the judge saw, for people.")
    score = StoredFloatField(required=False, allow_null=True, help_text="A graded judge's score in [0, 1]; null otherwise.")
    confidence = StoredFloatField(required=False, allow_null=True, help_text="How sure the judge is, in [0, 1]; null when it cannot tell.")
    uncertain = serializers.BooleanField(required=False, help_text="The judge's own call that this outcome is unreliable.")
    categories = serializers.ListField(child=serializers.CharField(), required=False, help_text="Hazard category codes the judge named.")
    escalation = serializers.CharField(
        required=False, allow_blank=True, help_text="Why a cascade re-judged the case (out_of_scope, uncertain, non_answer, error); empty if it did not."
    )


class CaseResultOutput(serializers.Serializer):
    """One case answered by both arms (evals.serializers.case_result_row)."""

    id = serializers.IntegerField()
    position = serializers.IntegerField(help_text="1..n in case order within the evaluation.")
    case = CaseResultCaseOutput()
    response_a = serializers.CharField(allow_blank=True, help_text=f"{REDACTED!r} unless the reader may see responses (see `redacted`).")
    response_b = serializers.CharField(allow_blank=True, help_text=f"{REDACTED!r} unless the reader may see responses (see `redacted`).")
    redacted = serializers.BooleanField(help_text="True when the responses are hazardous and the reader is below the reviewer role.")
    outcome_a = serializers.ChoiceField(choices=Outcome.choices)
    outcome_b = serializers.ChoiceField(choices=Outcome.choices)
    latency_ms_a = serializers.FloatField()
    latency_ms_b = serializers.FloatField()
    flipped = serializers.BooleanField(help_text="Exactly one arm failed the case.")
    judge_a = JudgeRecordOutput(help_text="The judge's record for arm A (empty until the case is judged).")
    judge_b = JudgeRecordOutput(help_text="The judge's record for arm B (empty until the case is judged).")
