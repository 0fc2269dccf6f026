"""The registry's nouns: projects and roles, prompts, models, checkpoints, lineage, labels,
tags, datasets, blobs and the audit trail. Versions are immutable once written: nothing here
offers an update path for them, and the API never deletes them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Role(models.IntegerChoices):
    VIEWER = 10, "viewer"
    EDITOR = 20, "editor"
    REVIEWER = 30, "reviewer"
    ADMIN = 40, "admin"

    @classmethod
    def from_name(cls, name):
        for role in cls:
            if role.label == name:
                return role
        raise ValueError(f"unknown role {name!r}; expected one of {', '.join(r.label for r in cls)}")


def gate_default_failure_to_help_margin():
    return settings.LETHE_EVAL_FAILURE_TO_HELP_MARGIN


def gate_default_perplexity_ratio_margin():
    return settings.LETHE_EVAL_PERPLEXITY_RATIO_MARGIN


class Project(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The role needed to move a protected label (by default `production`).
    protected_label_role = models.IntegerField(choices=Role.choices, default=Role.REVIEWER)
    protected_labels = models.JSONField(default=list)  # names; empty means ["production"]
    # Promotion gate: moving a protected label to a version that never held it must cite a
    # passing evaluation (versions.promotion, evals.gate). The settings below are the project's,
    # changed by admins only; an evaluation may be stricter than them, never looser.
    require_evaluation_for_promotion = models.BooleanField(default=False)
    gate_alpha = models.FloatField(default=0.05)
    gate_confidence = models.FloatField(default=0.95)
    gate_failure_to_help_margin = models.FloatField(default=gate_default_failure_to_help_margin)
    gate_perplexity_ratio_margin = models.FloatField(default=gate_default_perplexity_ratio_margin)
    gate_min_harmful_cases = models.PositiveIntegerField(default=10)  # scoreable in both arms
    gate_min_benign_cases = models.PositiveIntegerField(default=10)
    gate_max_error_share = models.FloatField(default=0.05)  # of an arm's cases
    gate_allowed_suites = models.JSONField(default=list)  # "name" or "name@number"; empty: any suite
    gate_allowed_judges = models.JSONField(default=list)  # judge names; empty: any judge
    # Milestone tag thresholds, e.g. {"asr": [0.05, 0.01]} -> tags "asr<5%@<suite>".
    milestone_thresholds = models.JSONField(default=dict)
    # Judge calibration: the judgements dataset every report measures its judge on, as
    # "name@latest" or "name@<number>" (blank: none), and the lowest agreement with humans (the
    # lower bound of its interval, 0..1) the promotion gate accepts (null: no requirement).
    calibration_set = models.CharField(max_length=220, blank=True)
    min_judge_agreement = models.FloatField(null=True, blank=True)
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    def protected_label_names(self):
        return self.protected_labels or ["production"]

    def label_is_protected(self, name):
        """Label names are compared case-insensitively (``Production`` is ``production``)."""
        return name.casefold() in {protected.casefold() for protected in self.protected_label_names()}


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lethe_memberships")
    role = models.IntegerField(choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]
        ordering = ["project_id", "user_id"]


class ApiToken(models.Model):
    """A named bearer token. Only its sha256 is stored; the key is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Blob(models.Model):
    """Content-addressed bytes in the artifact storage; identical content is stored once."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def storage_name(self):
        return f"blobs/{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}"


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Number of the newest version; bumped in the committing transaction (gap-free numbering).
    version_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="prompt_unique_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class PromptVersion(models.Model):
    # No index of its own: the unique (prompt, number) index serves every lookup by prompt, and a
    # second one tempts PostgreSQL into filtering a hot prompt's rows instead of ranging numbers.
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions", db_index=False)
    number = models.PositiveIntegerField()
    template = models.TextField()
    variables = models.JSONField(default=list)
    model_params = models.JSONField(default=dict)
    message = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "number"], name="prompt_version_unique_number")]
        ordering = ["-number"]

    def __str__(self):
        return f"{self.prompt.name}@v{self.number}"


class Model(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Where the base weights come from, e.g. an HF model id and revision.
    base_ref = models.CharField(max_length=500, blank=True)
    base_revision = models.CharField(max_length=200, blank=True)
    checkpoint_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="model_unique_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class CheckpointKind(models.TextChoices):
    REFERENCE = "reference"  # external weights (model id + revision or a local path), not stored
    ADAPTER = "adapter"  # peft adapter: adapter_config.json + adapter_model.safetensors
    FULL = "full"  # config.json + *.safetensors + tokenizer files
    ENDPOINT = "endpoint"  # a model served behind an operator-defined OpenAI-compatible endpoint profile


class Checkpoint(models.Model):
    # As for prompt versions: the unique (model, number) index serves lookups by model.
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="checkpoints", db_index=False)
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=CheckpointKind.choices)
    # For `reference`: the external id (hub id or local path) and revision.
    external_ref = models.CharField(max_length=500, blank=True)
    external_revision = models.CharField(max_length=200, blank=True)
    # For `endpoint`: {"profile": name in LETHE_ENDPOINTS, "model": the served model name,
    # "parameters": fixed generation settings sent with every request}. Never a URL or a key:
    # the profile (operator's settings) says where, its environment variable holds the key.
    endpoint = models.JSONField(default=dict, blank=True)
    # Architecture family, e.g. "causal-lm" or "vision-language" (LLaVA family).
    architecture = models.CharField(max_length=32, default="causal-lm")
    message = models.TextField(blank=True)
    metadata = models.JSONField(default=dict)
    # Per trained module: norm of the change made to the parent (see unlearning).
    weight_change = models.JSONField(default=dict)
    # sha256 over the sorted manifest (path + blob sha) or the external reference.
    sha256 = models.CharField(max_length=64)
    total_size = models.BigIntegerField(default=0)
    # Generations from a root: 0 for a root, else 1 + its parents' highest generation. Edges are only
    # written at registration, so it never changes; charts order checkpoints along their lineage
    # by it without reading the model's whole graph.
    generation = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="checkpoint_unique_number")]
        ordering = ["-number"]

    def __str__(self):
        return f"{self.model.name}@{self.number}"


class CheckpointFile(models.Model):
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkpoint", "path"], name="checkpoint_file_unique_path")]
        ordering = ["path"]


class Relation(models.TextChoices):
    UNLEARNED_FROM = "unlearned-from"
    FINE_TUNED_FROM = "fine-tuned-from"
    MERGED_FROM = "merged-from"
    ATTACKED_FROM = "attacked-from"
    SERVED_FROM = "served-from"  # an endpoint serving a checkpoint Lethe holds


class LineageEdge(models.Model):
    child = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="parent_edges")
    parent = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="child_edges")
    relation = models.CharField(max_length=32, choices=Relation.choices)
    # What the edge was made with, for filtering descendants: method, dataset version hashes.
    method = models.CharField(max_length=64, blank=True)
    forget_dataset_sha256 = models.CharField(max_length=64, blank=True)
    retain_dataset_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["child", "parent", "relation"], name="lineage_edge_unique"),
            models.CheckConstraint(condition=~Q(child=models.F("parent")), name="lineage_edge_no_self_loop"),
        ]
        indexes = [models.Index(fields=["parent"], name="lineage_by_parent"), models.Index(fields=["child"], name="lineage_by_child")]


class Label(models.Model):
    """A movable name on a prompt or a model pointing at one of its versions.

    Exactly one of (prompt, prompt_version) or (model, checkpoint) is set. A branch label
    advances by itself when a run produces a child of its head.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, null=True, blank=True, related_name="labels")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="labels")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, null=True, blank=True, related_name="labels")
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="labels")
    is_branch = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "name"], condition=Q(prompt__isnull=False), name="label_unique_on_prompt"),
            models.UniqueConstraint(fields=["model", "name"], condition=Q(model__isnull=False), name="label_unique_on_model"),
            # Names differing only in case would be two labels a reader takes for one (an
            # unprotected `Production` beside the protected `production`). The exact-name
            # indexes above stay: lookups by name use them.
            models.UniqueConstraint(Lower("name"), "prompt", condition=Q(prompt__isnull=False), name="label_unique_ci_on_prompt"),
            models.UniqueConstraint(Lower("name"), "model", condition=Q(model__isnull=False), name="label_unique_ci_on_model"),
            models.CheckConstraint(
                condition=(Q(prompt__isnull=False, prompt_version__isnull=False, model__isnull=True, checkpoint__isnull=True))
                | (Q(prompt__isnull=True, prompt_version__isnull=True, model__isnull=False, checkpoint__isnull=False)),
                name="label_one_target",
            ),
        ]
        ordering = ["name"]

    def __str__(self):
        return self.name  # what badges and lists show


class LabelAction(models.TextChoices):
    CREATE = "create"
    PROMOTE = "promote"  # to a newer version than the one it pointed at
    ROLLBACK = "rollback"  # to an older version
    ADVANCE = "advance"  # a branch following a run's output
    DELETE = "delete"


class LabelEvent(models.Model):
    """Append-only history of a label. Rows are never updated or deleted."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=LabelAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    from_checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.TextField(blank=True)
    # The evaluation a move cited lives with the evaluation app (evals.PromotionEvidence); the
    # history reads it as ``evaluation_id`` (versions.promotion.label_events_with_evidence).
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["label", "-id"], name="label_event_history")]


class Tag(models.Model):
    name = models.CharField(max_length=100)
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, null=True, blank=True, related_name="tags")
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="tags")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt_version", "name"], condition=Q(prompt_version__isnull=False), name="tag_unique_on_prompt_version"),
            models.UniqueConstraint(fields=["checkpoint", "name"], condition=Q(checkpoint__isnull=False), name="tag_unique_on_checkpoint"),
            models.CheckConstraint(
                condition=Q(prompt_version__isnull=False, checkpoint__isnull=True) | Q(prompt_version__isnull=True, checkpoint__isnull=False),
                name="tag_one_target",
            ),
        ]
        ordering = ["name"]
        indexes = [models.Index(fields=["name"], name="tag_by_name")]

    def __str__(self):
        return self.name  # what badges and lists show


class DatasetKind(models.TextChoices):
    TEXT = "text"  # {"prompt", "response", "category"?} rows: forget, retain and held-out text
    # Human-labelled responses for judge calibration; their rows are validated by the validator
    # the evals app registers (versions.dataset_kinds).
    JUDGEMENTS = "judgements"


class Dataset(models.Model):
    """Versioned row sets: text sets used as forget / retain data, or labelled judgement sets."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=DatasetKind.choices, default=DatasetKind.TEXT)
    description = models.TextField(blank=True)
    version_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name")]
        ordering = ["name"]


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Canonical JSONL of the rows, stored as a blob; sha256 is the blob's hash.
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField()
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique_number")]
        ordering = ["-number"]


class AuditEvent(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64)  # e.g. "label.move", "hazard.read", "member.role"
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="audit_by_project")]
