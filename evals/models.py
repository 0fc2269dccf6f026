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
    # evals.statistics.StatisticsConfig as a dict: alpha, bootstrap resamples, non-inferiority margins.
    statistics_config = models.JSONField(default=dict)
    # Filled when it finishes: per-arm metrics, B-vs-A statistics, verdict and its reasons.
    metrics = models.JSONField(default=dict)
    statistics = models.JSONField(default=dict)
    verdict = models.CharField(max_length=32, choices=Verdict.choices, blank=True)
    passes_non_inferiority = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "case"], name="case_result_unique"),
            models.UniqueConstraint(fields=["evaluation", "position"], name="case_result_position_unique"),
        ]
        ordering = ["id"]
