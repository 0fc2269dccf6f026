"""Suites of attack cases, and A/B evaluations between two versions on one suite version."""

from django.conf import settings
from django.db import models


class Expected(models.TextChoices):
    REFUSE = "refuse"  # a harmful request: complying is a successful attack
    COMPLY = "comply"  # a benign look-alike: refusing is an over-refusal


class Modality(models.TextChoices):
    TEXT = "text"
    IMAGE_TEXT = "image+text"


class Suite(models.Model):
    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="suites")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="suite_unique_name")]
        ordering = ["name"]


class SuiteVersion(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)  # over the canonical cases
    case_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Every response of an evaluation is hazardous text (redacted below reviewer, each read
    # audited) unless a reviewer marked its suite version benign: the cases' `expected` labels,
    # which editors write, never lower that protection. Who marked it and when; null: not marked.
    benign_marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    benign_marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["suite", "number"], name="suite_version_unique_number")]
        ordering = ["-number"]

    @property
    def is_marked_benign(self):
        return self.benign_marked_at is not None


class Case(models.Model):
    suite_version = models.ForeignKey(SuiteVersion, on_delete=models.CASCADE, related_name="cases")
    key = models.CharField(max_length=200)  # stable id within the version, e.g. "cyber-03/base64"
    prompt = models.TextField()
    category = models.CharField(max_length=100)
    attack_family = models.CharField(max_length=64, default="direct")
    modality = models.CharField(max_length=16, choices=Modality.choices, default=Modality.TEXT)
    expected = models.CharField(max_length=8, choices=Expected.choices)
    source = models.CharField(max_length=200, blank=True)
    parent_key = models.CharField(max_length=200, blank=True)  # the behaviour a derived case came from
    image_blob = models.ForeignKey("versions.Blob", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["suite_version", "key"], name="case_unique_key")]
        ordering = ["id"]


class Verdict(models.TextChoices):
    SAFER = "safer"
    LESS_SAFE = "less safe"
    NO_DIFFERENCE = "no significant difference"
    INCONCLUSIVE = "inconclusive"  # too few scoreable cases or too many errors to decide


class Evaluation(models.Model):
    """An A/B evaluation; its lifecycle lives on the shared ``jobs.Run``."""

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="evaluation")
    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="evaluations")
    suite_version = models.ForeignKey(SuiteVersion, on_delete=models.PROTECT, related_name="evaluations")
    checkpoint_a = models.ForeignKey("versions.Checkpoint", on_delete=models.PROTECT, related_name="evaluations_as_a")
    prompt_version_a = models.ForeignKey("versions.PromptVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    checkpoint_b = models.ForeignKey("versions.Checkpoint", on_delete=models.PROTECT, related_name="evaluations_as_b")
    prompt_version_b = models.ForeignKey("versions.PromptVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Pinned judge: {"name", "version", "config", "config_sha256"}.
    judge = models.JSONField(default=dict)
    generation_config = models.JSONField(default=dict)
    utility_dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    seed = models.IntegerField(default=0)
    # evals.statistics.StatisticsConfig as a dict: alpha, bootstrap resamples, non-inferiority
    # margins, the coverage rule (max error share, minimum paired cases).
    statistics_config = models.JSONField(default=dict)
    # Filled when it finishes: per-arm metrics, B-vs-A statistics, verdict and its reasons. These
    # hold only what the cases, arms, judge and settings determine, so a rerun reproduces them.
    metrics = models.JSONField(default=dict)
    statistics = models.JSONField(default=dict)
    verdict = models.CharField(max_length=32, choices=Verdict.choices, blank=True)
    passes_non_inferiority = models.BooleanField(null=True, blank=True)
    # What depends on the run, not on the result: {"A": {"mean_latency_ms"}, "B": {...}}.
    timings = models.JSONField(default=dict)
    # What answered each endpoint arm, recorded when the run used it: {"A": {"profile", "model",
    # "models" (GET /v1/models as listed), "model_listed", "headers" (version headers of that
    # answer and of the chat answers), "error" when /models could not be read}}. Like timings,
    # it depends on the run and stays out of the report and its hash.
    endpoint_fingerprints = models.JSONField(default=dict, blank=True)
    # sha256 of the canonical JSON of the report's content (evals.reporting.report_content):
    # judge pin, suite version, arms, settings, per-case outcomes and responses, metrics,
    # statistics, verdict. Equal for two runs of the same evaluation; empty until it finishes.
    report_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class PromotionEvidence(models.Model):
    """The evaluation a label move cited as its evidence (label_move's ``evaluation``). Kept here,
    keyed by the registry's label event, so the registry holds no key into evaluations; the
    label history reads it through versions.promotion.label_events_with_evidence."""

    label_event = models.OneToOneField("versions.LabelEvent", on_delete=models.CASCADE, primary_key=True, related_name="evidence")
    # An evaluation cited as evidence cannot be deleted, as when the label event held the key.
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="+")


class EndpointAnswerRecord(models.Model):
    """A case an endpoint arm already answered, kept as soon as it arrives: when the run fails or
    is cancelled part way, its retry (evaluation_retry_copy) takes these over and does not ask
    for them again. Removed when the evaluation's results are saved."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="endpoint_answers", db_index=False)
    arm = models.CharField(max_length=1)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    latency_ms = models.FloatField()
    attempts = models.IntegerField()
    usage = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["evaluation", "arm", "case"], name="endpoint_answer_unique_case")]


class Outcome(models.TextChoices):
    ATTACK_SUCCESS = "attack_success"  # complied with a harmful request
    REFUSED = "refused"
    COMPLIED = "complied"  # answered a benign request
    OVER_REFUSAL = "over_refusal"
    NON_ANSWER = "non_answer"  # empty, degenerate, off-topic or evasive: never an attack success
    ERROR = "error"


class CaseResult(models.Model):
    """One case, answered by both arms: outcomes are paired per case."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="case_results")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    # 1..n within the evaluation, in case order: pages of all results are a range of this
    # (evaluation, position) index, so a deep page costs what the first one does.
    position = models.PositiveIntegerField()
    response_a = models.TextField(blank=True)
    response_b = models.TextField(blank=True)
    outcome_a = models.CharField(max_length=16, choices=Outcome.choices)
    outcome_b = models.CharField(max_length=16, choices=Outcome.choices)
    latency_ms_a = models.FloatField(default=0.0)
    latency_ms_b = models.FloatField(default=0.0)
    flipped = models.BooleanField(default=False, db_index=True)
    # What the judge said beyond the outcome (evals.judge_records.judgement_record): its detail,
    # confidence, category codes (Llama Guard) and why a cascade escalated the case. {} before 0005.
    judge_detail_a = models.JSONField(default=dict, blank=True)
    judge_detail_b = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "case"], name="case_result_unique"),
            models.UniqueConstraint(fields=["evaluation", "position"], name="case_result_position_unique"),
        ]
        # The explorer's outcome filters (still succeeds on B, regressed, fixed, over-refused, an
        # arm's outcome) read one evaluation's matching rows in position order from these.
        indexes = [
            models.Index(fields=["evaluation", "outcome_b", "position"], name="case_result_by_outcome_b"),
            models.Index(fields=["evaluation", "outcome_a", "position"], name="case_result_by_outcome_a"),
        ]
        ordering = ["id"]


class Calibration(models.Model):
    """How far a judge agrees with humans on one version of a labelled judgement set (a dataset of
    kind `judgements`). Its lifecycle lives on the shared ``jobs.Run``; once the run has
    succeeded nothing here changes."""

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="calibration")
    # Neither foreign key has an index of its own: the two indexes below start with them.
    project = models.ForeignKey("versions.Project", on_delete=models.CASCADE, related_name="calibrations", db_index=False)
    dataset_version = models.ForeignKey("versions.DatasetVersion", on_delete=models.PROTECT, related_name="calibrations", db_index=False)
    # Pinned judge, as an evaluation pins it: {"name", "version", "config", "config_sha256",
    # "requested_config"}; name and config hash are also columns, so a report finds the
    # calibration of its judge by index.
    judge = models.JSONField(default=dict)
    judge_name = models.CharField(max_length=64)
    judge_config_sha256 = models.CharField(max_length=64)
    # Filled when it finishes: evals.calibration.calibration_metrics of every row, the judge's
    # outcome of each row in the set's order, and how many rows the judge and humans disagree on.
    metrics = models.JSONField(default=dict)
    judged = models.JSONField(default=list)
    disagreement_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project", "-id"], name="calibration_by_project"),
            models.Index(fields=["dataset_version", "judge_name", "judge_config_sha256"], name="calibration_by_judge_pin"),
        ]


class CalibrationItem(models.Model):
    """A row of the set on which the judge and humans disagree (a judge error included), kept with
    its text so the disagreement page reads a range of ``rank`` and never the whole set."""

    # No index of its own: the unique (calibration, rank) index serves every lookup by calibration.
    calibration = models.ForeignKey(Calibration, on_delete=models.CASCADE, related_name="disagreements", db_index=False)
    # 1..n among the calibration's disagreements, in set order: pages are ranges of this index.
    rank = models.PositiveIntegerField()
    row_number = models.PositiveIntegerField()  # 1-based position of the row in the set version
    key = models.CharField(max_length=200, blank=True)
    prompt = models.TextField()
    response = models.TextField(blank=True)
    expected = models.CharField(max_length=8, choices=Expected.choices)
    category = models.CharField(max_length=100, blank=True)
    human = models.CharField(max_length=32)
    judged = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)  # the judge's own explanation, e.g. an error

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calibration", "rank"], name="calibration_item_rank_unique")]
        ordering = ["rank"]
