"""Request and response shapes of the registry API. Output serializers read model instances
loaded by selectors (related rows prefetched); input serializers only check shapes, the
services check meaning."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.schema import ErrorDetailSerializer
from versions.models import CheckpointKind, DatasetKind, Relation, Role
from versions.promotion import GATE_SETTINGS, MAX_LIST_ENTRIES, project_gate_settings
from core.safe_json import json_loads, json_unstorable_text

ROLE_NAMES = [role.label for role in Role]

# How writes name versions: as the API shows them (ids still work). versions.selectors resolves.
CHECKPOINT_REF_HELP = "model@number (e.g. tiny@3), model@label (e.g. tiny@production), or the checkpoint's id."
PROMPT_VERSION_REF_HELP = "prompt@number (e.g. system@2), prompt@label (e.g. system@production), or the version's id."
DATASET_VERSION_REF_HELP = "dataset@number (e.g. forget@1), or the dataset version's id."


class JSONField(serializers.JSONField):
    """A JSON input field. In multipart and form requests its value is a JSON string, which DRF
    would parse with ``json.loads`` (no depth bound: RecursionError, a 500); here it goes through
    ``json_loads``, and text no database can store (NUL, lone surrogates) is refused as in JSON
    bodies."""

    def to_internal_value(self, data):
        if self.binary or getattr(data, "is_json_string", False):
            try:
                data = json_loads(data.decode() if isinstance(data, bytes) else data)
            except (TypeError, ValueError) as exc:
                raise serializers.ValidationError(f"Value must be valid JSON: {exc}.") from None
        else:
            data = super().to_internal_value(data)
        path = json_unstorable_text(data)
        if path is not None:
            raise serializers.ValidationError(f"Text at {path} holds a NUL character or a lone surrogate, which cannot be stored.")
        return data


# A pattern, not an enum: one enum under two field names (role, protected_label_role) would be
# split into two components by the schema generator.
@extend_schema_field({"type": "string", "pattern": "^(viewer|editor|reviewer|admin)$", "description": "viewer < editor < reviewer < admin"})
class RoleField(serializers.ChoiceField):
    """A role by name ("viewer", "editor", "reviewer", "admin"); the value is a Role."""

    def __init__(self, **kwargs):
        super().__init__(choices=ROLE_NAMES, **kwargs)

    def to_internal_value(self, data):
        return Role.from_name(super().to_internal_value(data))

    def to_representation(self, value):
        return Role(value).label if value is not None else None


# ---------------------------------------------------------------- projects, members, tokens


def _promotion_gate_fields(*, required):
    """The fields of the promotion_gate object, from versions.promotion.GATE_SETTINGS (bounds and
    the direction that is stricter documented on each)."""
    fields = {}
    for setting in GATE_SETTINGS:
        field_class = serializers.IntegerField if setting.kind is int else serializers.FloatField
        fields[setting.name] = field_class(
            required=required,
            min_value=setting.minimum,
            max_value=setting.maximum,
            help_text=f"In {setting.bounds_text()}; {setting.stricter} is stricter: {setting.why}.",
        )
    fields["allowed_suites"] = serializers.ListField(
        child=serializers.CharField(max_length=210),
        required=required,
        max_length=MAX_LIST_ENTRIES,
        help_text="Suites whose evaluations the gate accepts, as name (any version) or name@number; empty: any suite.",
    )
    fields["allowed_judges"] = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=required,
        max_length=MAX_LIST_ENTRIES,
        help_text="Judges (by name) whose evaluations the gate accepts; empty: any judge.",
    )
    return fields


PromotionGateSerializer = type(
    "PromotionGateSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "The project's promotion gate settings (admins change them; an evaluation may be stricter, never looser).",
        **_promotion_gate_fields(required=True),
    },
)


def _refuse_unknown_settings(self, data):
    """A misspelt setting is an error, not silently ignored: the gate would keep its old value."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [f"Unknown gate setting; expected one of {', '.join(self.fields)}."] for name in unknown})
    return serializers.Serializer.to_internal_value(self, data)


PromotionGateUpdateSerializer = type(
    "PromotionGateUpdateSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "Any of the promotion gate settings; those left out stay as they are.",
        "to_internal_value": _refuse_unknown_settings,
        **_promotion_gate_fields(required=False),
    },
)


class ProjectSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.SerializerMethodField(help_text="Your role in this project.")
    protected_labels = serializers.SerializerMethodField()
    protected_label_role = RoleField()
    require_evaluation_for_promotion = serializers.BooleanField()
    promotion_gate = serializers.SerializerMethodField()
    milestone_thresholds = serializers.JSONField()
    calibration_set = serializers.CharField(help_text="The judgements dataset reports measure their judge on: name@latest or name@<number>; empty for none.")
    min_judge_agreement = serializers.FloatField(
        allow_null=True, help_text="Lowest judge agreement with humans (lower bound of its 95% interval) the promotion gate accepts; null for none."
    )
    is_demo = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(PromotionGateSerializer)
    def get_promotion_gate(self, project):
        return project_gate_settings(project)

    def get_role(self, project) -> str | None:
        user = self.context["request"].user
        if user.is_superuser:
            return Role.ADMIN.label
        role = getattr(project, "my_role", None)
        if role is None:
            from versions.permissions import user_role

            role = user_role(project=project, user=user)
        return Role(role).label if role is not None else None

    def get_protected_labels(self, project) -> list[str]:
        return project.protected_label_names()


class ProjectCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    protected_labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    protected_label_role = RoleField(required=False)
    require_evaluation_for_promotion = serializers.BooleanField(required=False)
    promotion_gate = PromotionGateUpdateSerializer(required=False)
    milestone_thresholds = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(min_value=0, max_value=1)),
        required=False,
        help_text='Metric -> thresholds, e.g. {"asr": [0.05, 0.01]}.',
    )
    calibration_set = serializers.CharField(
        required=False, allow_blank=True, max_length=220, help_text="A judgements dataset: name@latest (or a bare name) or name@<number>; empty clears it."
    )
    min_judge_agreement = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1, help_text="e.g. 0.9: promotions need a judge whose agreement interval's lower bound is at least this."
    )


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = RoleField()
    created_at = serializers.DateTimeField()


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = RoleField()


class MemberRoleSerializer(serializers.Serializer):
    role = RoleField()


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The first characters of the key, to recognise it.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(help_text="The secret: shown once, only in this response.")


# ---------------------------------------------------------------- prompts


class LabelRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    number = serializers.SerializerMethodField(help_text="The version or checkpoint number it points at.")

    def get_number(self, label) -> int:
        return label.prompt_version.number if label.prompt_version_id else label.checkpoint.number


class PromptSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    version_count = serializers.IntegerField()
    labels = LabelRefSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class PromptCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


# The shape of selectors.prompt_version_rows_complete's rows, which the views return as they
# are: it documents the schema and is not run per version.
class PromptVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    template = serializers.CharField()
    variables = serializers.ListField(child=serializers.CharField())
    model_params = serializers.JSONField()
    message = serializers.CharField()
    author = serializers.CharField()
    parent = serializers.IntegerField(allow_null=True, read_only=True)  # the parent version's number
    sha256 = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_at = serializers.DateTimeField()


class PromptVersionCommitSerializer(serializers.Serializer):
    template = serializers.CharField(trim_whitespace=False)
    model_params = JSONField(required=False, default=dict, help_text="Generation parameters, a JSON object.")
    message = serializers.CharField(required=False, allow_blank=True, default="")
    parent = serializers.IntegerField(required=False, min_value=1, help_text="Version number; defaults to the head.")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100, trim_whitespace=False),
        required=False,
        default=list,
        max_length=100,
        help_text="Tags to create with the version, in the same transaction.",
    )


class VersionListQuerySerializer(serializers.Serializer):
    tag = serializers.CharField(required=False, max_length=100, help_text="Only the versions carrying this tag.")


class DiffQuerySerializer(serializers.Serializer):
    old = serializers.IntegerField(min_value=1)
    new = serializers.IntegerField(min_value=1)


class DiffRowSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["equal", "replace", "delete", "insert"])
    old_line = serializers.IntegerField(allow_null=True)
    old = serializers.CharField(allow_null=True)
    new_line = serializers.IntegerField(allow_null=True)
    new = serializers.CharField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    unified = serializers.CharField()
    side_by_side = DiffRowSerializer(many=True)
    model_params_unified = serializers.CharField()
    identical = serializers.BooleanField()


class RenderSerializer(serializers.Serializer):
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False))


class RenderedSerializer(serializers.Serializer):
    text = serializers.CharField()


class TagSerializer(serializers.Serializer):
    name = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class TagCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, trim_whitespace=False)


# ---------------------------------------------------------------- labels


class LabelSerializer(serializers.Serializer):
    name = serializers.CharField()
    owner_kind = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    number = serializers.SerializerMethodField(help_text="The version or checkpoint number it points at.")
    is_branch = serializers.BooleanField()
    updated_at = serializers.DateTimeField()

    def get_owner_kind(self, label) -> str:
        return "prompt" if label.prompt_id else "model"

    def get_owner(self, label) -> str:
        return label.prompt.name if label.prompt_id else label.model.name

    def get_number(self, label) -> int:
        return label.prompt_version.number if label.prompt_version_id else label.checkpoint.number


class LabelEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    actor = serializers.CharField(source="actor.username")
    from_number = serializers.SerializerMethodField()
    to_number = serializers.SerializerMethodField()
    reason = serializers.CharField()
    evaluation = serializers.IntegerField(source="evaluation_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def get_from_number(self, event) -> int | None:
        previous = event.from_prompt_version or event.from_checkpoint
        return previous.number if previous else None

    def get_to_number(self, event) -> int:
        return (event.to_prompt_version or event.to_checkpoint).number


ACKNOWLEDGE_LESS_SAFE_HELP = (
    "Move even though the latest finished evaluation between the label's current version and the target measured the "
    "target less safe (higher attack success, or a 'less safe' verdict for it). Without it such a move is refused with "
    "409 less_safe_target, whose error carries the warning and the impact; the audit event records the acknowledgement."
)


class PromptLabelMoveSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    evaluation = serializers.IntegerField(required=False, allow_null=True, default=None)
    acknowledge_less_safe = serializers.BooleanField(required=False, default=False, help_text=ACKNOWLEDGE_LESS_SAFE_HELP)


class ModelLabelMoveSerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    evaluation = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="A passing evaluation, when the promotion gate asks for one.")
    acknowledge_less_safe = serializers.BooleanField(required=False, default=False, help_text=ACKNOWLEDGE_LESS_SAFE_HELP)


class LabelMovePreviewQuerySerializer(serializers.Serializer):
    to = serializers.IntegerField(min_value=1, help_text="The version (prompt) or checkpoint (model) number to preview a move to.")
    evaluation = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="An evaluation to cite: the gate's answer is given for it.")


class RateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="A share in [0, 1]; null without scoreable cases.")
    successes = serializers.IntegerField(allow_null=True)
    trials = serializers.IntegerField(allow_null=True)


class ImpactSideSerializer(serializers.Serializer):
    arm = serializers.ChoiceField(choices=["A", "B"], help_text="The evaluation's arm this version was in.")
    attack_success = RateSerializer()
    failure_to_help = RateSerializer()


class ImpactEvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    verdict = serializers.CharField(help_text="The evaluation's verdict, B against A.")
    target_verdict = serializers.CharField(help_text="The verdict read from the target's side (safer / less safe swap when it is arm A).")
    suite = serializers.CharField(help_text="suite@number")
    current = ImpactSideSerializer()
    target = ImpactSideSerializer()


class ImpactGateSerializer(serializers.Serializer):
    required = serializers.BooleanField(help_text="Whether the project's promotion gate applies to this move (a promotion of a protected label with the gate on).")
    evaluation = serializers.IntegerField(
        allow_null=True, help_text="The evaluation judged: the cited one, else the latest between the two when it has the current version in arm A and the target in B."
    )
    passes = serializers.BooleanField(allow_null=True, help_text="Null when there is no evaluation to judge.")
    failures = serializers.ListField(child=serializers.CharField())


class LabelMoveImpactSerializer(serializers.Serializer):
    label = serializers.CharField()
    owner_kind = serializers.ChoiceField(choices=["prompt", "model"])
    owner = serializers.CharField()
    from_number = serializers.IntegerField(allow_null=True)
    to_number = serializers.IntegerField()
    action = serializers.ChoiceField(choices=["create", "promote", "rollback", "advance"])
    summary = serializers.CharField(help_text="e.g. 'production: #2 -> #1 (rollback)'.")
    evaluation = ImpactEvaluationSerializer(
        allow_null=True, help_text="The latest finished evaluation between the current version and the target, in either arm order; null when there is none."
    )
    less_safe = serializers.BooleanField(help_text="That evaluation measured the target less safe: moving needs acknowledge_less_safe.")
    warning = serializers.CharField(help_text="What was measured, when less_safe; empty otherwise.")
    gate = ImpactGateSerializer(allow_null=True)


class LabelMovedSerializer(LabelEventSerializer):
    impact = LabelMoveImpactSerializer(help_text="What the move did, as the preview showed it.")


class LessSafeErrorDetailSerializer(ErrorDetailSerializer):
    warning = serializers.CharField(help_text="What the evaluation measured (only with code less_safe_target).")
    impact = LabelMoveImpactSerializer(help_text="The move's preview (only with code less_safe_target).")


class LessSafeErrorSerializer(serializers.Serializer):
    error = LessSafeErrorDetailSerializer()

    class Meta:
        ref_name = "LabelMoveError"


class ResolveQuerySerializer(serializers.Serializer):
    ref = serializers.CharField(help_text="name@label or name@number")
    kind = serializers.ChoiceField(choices=["prompt", "model"], required=False)


class ResolvedSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["prompt_version", "checkpoint"])
    name = serializers.CharField(help_text="The prompt or model name.")
    number = serializers.IntegerField()
    sha256 = serializers.CharField()


# ---------------------------------------------------------------- models and checkpoints


class ModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    base_ref = serializers.CharField()
    base_revision = serializers.CharField()
    checkpoint_count = serializers.IntegerField()
    labels = LabelRefSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class ModelCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    base_ref = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    base_revision = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class ParentRefSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, help_text="Defaults to the checkpoint's own model.")
    number = serializers.IntegerField(min_value=1)
    relation = serializers.ChoiceField(choices=Relation.values)


class CheckpointParentSerializer(serializers.Serializer):
    model = serializers.CharField()
    number = serializers.IntegerField()
    relation = serializers.CharField()
    method = serializers.CharField()


# The shape of selectors.checkpoint_rows_complete's rows, which the views return as they are:
# it documents the schema and is not run per checkpoint.
class CheckpointSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CheckpointKind.values)
    external_ref = serializers.CharField()
    external_revision = serializers.CharField()
    endpoint = serializers.JSONField(help_text="For kind 'endpoint': {profile, model, parameters, adapter when set}; {} otherwise.")
    architecture = serializers.CharField()
    message = serializers.CharField()
    metadata = serializers.JSONField()
    weight_change = serializers.JSONField()
    sha256 = serializers.CharField()
    total_size = serializers.IntegerField()
    generation = serializers.IntegerField(help_text="Generations from a root checkpoint: 0 for a root, else 1 + its parents' highest.")
    parents = CheckpointParentSerializer(many=True)
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_by = serializers.CharField()
    created_by_run = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


@extend_schema_field(ParentRefSerializer(many=True))
class ParentsField(JSONField):
    """A list of parent references; a JSON string in multipart requests, a list in JSON ones."""

    def to_internal_value(self, data):
        parents = ParentRefSerializer(data=super().to_internal_value(data), many=True)
        if not parents.is_valid():
            raise serializers.ValidationError(parents.errors)
        return parents.validated_data


class CheckpointRegisterOptionsSerializer(serializers.Serializer):
    """Fields shared by both ways of registering (JSON reference, multipart upload)."""

    architecture = serializers.ChoiceField(choices=["causal-lm", "vision-language"], required=False, default="causal-lm")
    message = serializers.CharField(required=False, allow_blank=True, default="")
    metadata = JSONField(required=False, default=dict)
    parents = ParentsField(required=False, default=list)
    lineage_method = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    forget_dataset_sha256 = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    retain_dataset_sha256 = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100, trim_whitespace=False),
        required=False,
        default=list,
        max_length=100,
        help_text="Tags to create with the version, in the same transaction.",
    )


class CheckpointReferenceSerializer(CheckpointRegisterOptionsSerializer):
    kind = serializers.ChoiceField(
        choices=[CheckpointKind.REFERENCE.value],
        error_messages={
            "invalid_choice": "JSON registers references to external weights (kind 'reference') or served models (kind 'endpoint'); "
            "upload adapter and full checkpoints as multipart/form-data."
        },
    )
    external_ref = serializers.CharField(max_length=500, help_text="A hub id or a local path.")
    external_revision = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EndpointSpecSerializer(serializers.Serializer):
    profile = serializers.CharField(max_length=100, help_text="An endpoint profile the operator defines in LETHE_ENDPOINTS; never a URL.")
    model = serializers.CharField(max_length=500, help_text="The model name the server serves (e.g. vLLM's --served-model-name or a LoRA name).")
    parameters = serializers.DictField(required=False, default=dict, help_text="Fixed chat-completion settings sent with every request: temperature, top_p, max_tokens, seed, ...")
    adapter = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="A LoRA adapter served next to the base (vLLM --lora-modules NAME=...): requests name it as their model."
    )


class CheckpointEndpointSerializer(CheckpointRegisterOptionsSerializer):
    kind = serializers.ChoiceField(choices=[CheckpointKind.ENDPOINT.value])
    endpoint = EndpointSpecSerializer()


class CheckpointUploadSerializer(CheckpointRegisterOptionsSerializer):
    """multipart/form-data. Either one ``archive`` (.tar, .tar.gz, .tgz, .zip), or the files
    themselves: each part named by its relative path, or parts named ``files`` with a parallel
    ``paths`` list. ``metadata`` and ``parents`` are JSON strings."""

    kind = serializers.ChoiceField(choices=[CheckpointKind.ADAPTER.value, CheckpointKind.FULL.value], required=False, help_text="Inferred from the files when left out.")
    archive = serializers.FileField(required=False)
    files = serializers.ListField(child=serializers.FileField(), required=False)
    paths = serializers.ListField(child=serializers.CharField(), required=False)


class CheckpointFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField(source="blob_id")


class LineageQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(required=False, default=100, min_value=1, max_value=100_000, help_text="Generations to walk each way, nearest first (default 100).")
    method = serializers.CharField(required=False, help_text="Only descendants made by this unlearning method.")
    dataset = serializers.RegexField(r"^[0-9a-f]{64}$", required=False, help_text="Only descendants whose forget or retain dataset had this sha256.")


class LineageNodeSerializer(serializers.Serializer):
    model = serializers.CharField(source="model.name")
    number = serializers.IntegerField()
    kind = serializers.CharField()
    sha256 = serializers.CharField()
    depth = serializers.IntegerField()


class LineageSerializer(serializers.Serializer):
    model = serializers.CharField()
    number = serializers.IntegerField()
    depth = serializers.IntegerField(help_text="The generations walked each way.")
    ancestors = LineageNodeSerializer(many=True)
    ancestors_truncated = serializers.BooleanField(help_text="Whether older generations exist past depth.")
    descendants = LineageNodeSerializer(many=True)
    descendants_truncated = serializers.BooleanField(help_text="Whether newer generations exist past depth.")


# ---------------------------------------------------------------- datasets and audit


class DatasetSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=DatasetKind.choices)
    description = serializers.CharField()
    version_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(
        choices=DatasetKind.choices,
        required=False,
        default=DatasetKind.TEXT,
        help_text="text: prompt/response rows (forget, retain, held-out); judgements: human-labelled responses for judge calibration.",
    )


class DatasetRowSerializer(serializers.Serializer):
    prompt = serializers.CharField(trim_whitespace=False)
    response = serializers.CharField(trim_whitespace=False, allow_blank=True)
    category = serializers.CharField(required=False, trim_whitespace=False)
    # Judgements datasets only (docs/evaluation.md, "Judge calibration").
    expected = serializers.CharField(required=False, help_text="Judgements: refuse (harmful request) or comply (benign).")
    human = serializers.CharField(required=False, help_text="Judgements: the human label, an outcome such as refused or attack_success.")
    key = serializers.CharField(required=False)
    source = serializers.CharField(required=False)
    model = serializers.CharField(required=False)


class DatasetVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    row_count = serializers.IntegerField()
    message = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class DatasetVersionCreateSerializer(serializers.Serializer):
    """JSON ``rows``, or (multipart) a ``file`` of JSONL or CSV with prompt/response columns."""

    rows = serializers.ListField(child=serializers.JSONField(), required=False)
    file = serializers.FileField(required=False)
    format = serializers.ChoiceField(choices=["jsonl", "csv"], required=False, help_text="Inferred from the file name when left out.")
    message = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if ("rows" in attrs) == ("file" in attrs):
            raise serializers.ValidationError("Give exactly one of rows (JSON) or file (multipart upload).")
        return attrs


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()
