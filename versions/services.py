"""Writes to the registry. Every function here is keyword-only and transactional; views, commands
and runs call these and nothing else to change registry state."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from versions import blob_store, checkpoint_files, selectors
from core.errors import Conflict, Forbidden, LessSafeTarget, NotFound, RetryableConflict, ValidationFailed
from versions.events import event_publish, project_deleting
from versions.hashing import canonical_json, sha256_text
from versions.models import (
    ApiToken,
    AuditEvent,
    Checkpoint,
    CheckpointFile,
    CheckpointKind,
    Dataset,
    DatasetKind,
    DatasetVersion,
    Label,
    LabelAction,
    LabelEvent,
    LineageEdge,
    Membership,
    Model,
    Project,
    Prompt,
    PromptVersion,
    Relation,
    Role,
    Tag,
)
from versions.permissions import forget_cached_roles, role_require
from versions.sql import counter_next
from versions.promotion import promotion_evidence_record

VARIABLE_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _emit(*, project, event, payload):
    """Called inside the action's transaction, so what subscribers write (webhook delivery rows)
    commits or rolls back with the action; subscribers never block or fail it."""
    event_publish(project=project, event=event, payload=payload)


def _check_name(kind, name):
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValidationFailed(
            f"Invalid {kind} name {name!r}: use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            fields={"name": ["Invalid name."]},
        )


# ---------------------------------------------------------------- audit


def audit_record(*, project, actor, action, object_type, object_id, data=None):
    return AuditEvent.objects.create(
        project=project,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=data or {},
    )


def hazard_read_record(*, project, actor, object_type, object_id, data):
    """Record that ``actor`` read hazardous text unredacted (responses of an evaluation, rows of a
    dataset version). Every place that shows such text calls this, and only after deciding the
    reader may see it; the event is written in the request's transaction."""
    return audit_record(project=project, actor=actor, action="hazard.read", object_type=object_type, object_id=object_id, data=data)


# ---------------------------------------------------------------- projects, members, tokens


@transaction.atomic
def project_create(*, slug, name, creator, description="", is_demo=False):
    slug = slug or slugify(name)
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,99}$", slug or ""):
        raise ValidationFailed(f"Invalid project slug {slug!r}: lowercase letters, digits and '-'.", fields={"slug": ["Invalid slug."]})
    if Project.objects.filter(slug=slug).exists():
        raise Conflict(f"A project with slug {slug!r} already exists.", fields={"slug": ["Already exists."]})
    project = Project.objects.create(slug=slug, name=name or slug, description=description, is_demo=is_demo)
    Membership.objects.create(project=project, user=creator, role=Role.ADMIN)
    forget_cached_roles(creator)
    audit_record(project=project, actor=creator, action="project.create", object_type="project", object_id=project.pk, data={"slug": slug})
    return project


@transaction.atomic
def project_settings_update(*, project, actor, **changes):
    """Change project settings (admin only). ``promotion_gate`` is a partial object of gate
    settings (versions.promotion.GATE_SETTINGS and the allowed suites and judges): the keys it
    names change, the others stay."""
    from versions.promotion import gate_settings_validate

    role_require(project=project, user=actor, role=Role.ADMIN)
    allowed = {
        "name",
        "description",
        "protected_label_role",
        "protected_labels",
        "require_evaluation_for_promotion",
        "milestone_thresholds",
        "promotion_gate",
        *JUDGE_CALIBRATION_SETTINGS,
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown project settings: {', '.join(sorted(unknown))}.")
    changes.update(_judge_calibration_settings_clean(project=project, changes=changes))
    columns = {key: value for key, value in changes.items() if key != "promotion_gate"}
    if "promotion_gate" in changes:
        columns.update(gate_settings_validate(changes["promotion_gate"]))
    before = {key: getattr(project, key) for key in columns}
    for key, value in columns.items():
        setattr(project, key, value)
    project.save(update_fields=list(columns))
    audit_record(project=project, actor=actor, action="project.settings", object_type="project", object_id=project.pk, data={"before": before, "after": columns})
    return project


JUDGE_CALIBRATION_SETTINGS = ("calibration_set", "min_judge_agreement")


def _judge_calibration_settings_clean(*, project, changes):
    """The calibration set as "name@latest" or "name@<number>" (it must be a judgements dataset
    of the project, and a pinned version must exist; blank clears it), and the gate's minimum
    judge agreement as a fraction in [0, 1] or None."""
    from versions.selectors import dataset_version_resolve

    cleaned = {}
    if "calibration_set" in changes:
        ref = changes["calibration_set"] or ""
        if not isinstance(ref, str):
            raise ValidationFailed("calibration_set must be a string such as 'my-labels@latest'.", fields={"calibration_set": ["Expected a string."]})
        ref = ref.strip()
        if ref:
            name, _, selector = ref.partition("@")
            ref = f"{name}@{selector or 'latest'}"
            try:
                dataset_version_resolve(project=project, ref=ref, kind=DatasetKind.JUDGEMENTS, allow_empty=True)
            except (NotFound, ValidationFailed) as exc:
                raise ValidationFailed(str(exc), fields={"calibration_set": [str(exc)]}) from None
        cleaned["calibration_set"] = ref
    if "min_judge_agreement" in changes:
        value = changes["min_judge_agreement"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
            raise ValidationFailed(
                "min_judge_agreement is a fraction between 0 and 1 (e.g. 0.9), or null for no requirement.",
                fields={"min_judge_agreement": ["Expected a number in [0, 1] or null."]},
            )
        cleaned["min_judge_agreement"] = None if value is None else float(value)
    return cleaned


@transaction.atomic
def member_set(*, project, user, role, actor):
    role = Role(role)
    role_require(project=project, user=actor, role=Role.ADMIN)
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    previous = membership.role if membership else None
    if previous == Role.ADMIN and role != Role.ADMIN and not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(user=user).exists():
        raise Conflict("A project needs at least one admin; promote someone else first.")
    if membership:
        membership.role = role
        membership.save(update_fields=["role"])
    else:
        membership = Membership.objects.create(project=project, user=user, role=role)
    forget_cached_roles(user)
    audit_record(
        project=project,
        actor=actor,
        action="member.role",
        object_type="user",
        object_id=user.pk,
        data={"username": user.username, "from": Role(previous).label if previous else None, "to": role.label},
    )
    return membership


@transaction.atomic
def member_add(*, project, user, role, actor):
    """Add ``user`` with ``role``; someone who is already a member is a conflict (a role is
    changed with member_set, so an add never silently demotes or promotes)."""
    role_require(project=project, user=actor, role=Role.ADMIN)
    if Membership.objects.select_for_update().filter(project=project, user=user).exists():
        raise Conflict(f"{user.username} is already a member of {project.slug}; change the role with PATCH.", fields={"username": ["Already a member."]})
    return member_set(project=project, user=user, role=role, actor=actor)


@transaction.atomic
def member_remove(*, project, user, actor):
    role_require(project=project, user=actor, role=Role.ADMIN)
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise NotFound(f"{user.username} is not a member of {project.slug}.")
    if membership.role == Role.ADMIN and not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(user=user).exists():
        raise Conflict("A project needs at least one admin; promote someone else first.")
    membership.delete()
    forget_cached_roles(user)
    audit_record(project=project, actor=actor, action="member.remove", object_type="user", object_id=user.pk, data={"username": user.username, "role": Role(membership.role).label})


def _password_check(*, password, user):
    """AUTH_PASSWORD_VALIDATORS on ``password`` for ``user`` (who may not be saved yet)."""
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(f"Password refused: {' '.join(exc.messages)}", fields={"password": list(exc.messages)}) from None


def user_create(*, username, password=None, email=""):
    """A user; ``password`` None leaves it unusable (sign-in only after a password is set)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise Conflict(f"User {username!r} already exists.")
    if password is not None:
        _password_check(password=password, user=User(username=username, email=email))
    return User.objects.create_user(username=username, password=password, email=email)


def user_password_set(*, user, password):
    """Set a user's password, if AUTH_PASSWORD_VALIDATORS accept it."""
    _password_check(password=password, user=user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def token_create(*, user, name):
    """Create a token; the key is returned once and only its hash is kept."""
    if not name or len(name) > 100:
        raise ValidationFailed("A token needs a name of 1-100 characters.", fields={"name": ["Required."]})
    key = "lethe_" + secrets.token_urlsafe(32)
    from versions.authentication import token_sha256

    token = ApiToken.objects.create(user=user, name=name, prefix=key[:12], key_sha256=token_sha256(key))
    return token, key


def token_revoke(*, token, actor):
    if token.user_id != actor.pk and not actor.is_superuser:
        raise NotFound("Token not found.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(project=None, actor=actor, action="token.revoke", object_type="token", object_id=token.pk, data={"name": token.name})
    return token


# ---------------------------------------------------------------- prompts


def template_variables(template):
    seen = []
    for name in VARIABLE_PATTERN.findall(template):
        if name not in seen:
            seen.append(name)
    return seen


def prompt_render(*, prompt_version, variables):
    """Fill a version's ``{{ name }}`` placeholders; a missing or unknown variable is an error naming it."""
    if not isinstance(variables, dict):
        raise ValidationFailed("variables must be an object of name -> value.")
    expected = set(prompt_version.variables)
    missing = [name for name in prompt_version.variables if name not in variables]
    unknown = sorted(set(variables) - expected)
    fields = {}
    if missing:
        fields.update({name: ["Missing variable."] for name in missing})
    if unknown:
        fields.update({name: ["Unknown variable."] for name in unknown})
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing variable{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown variable{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        raise ValidationFailed(f"Cannot render {prompt_version}: {'; '.join(parts)}.", fields=fields)
    return VARIABLE_PATTERN.sub(lambda match: str(variables[match.group(1)]), prompt_version.template)


@transaction.atomic
def prompt_create(*, project, name, actor, description=""):
    role_require(project=project, user=actor, role=Role.EDITOR)
    _check_name("prompt", name)
    try:
        with transaction.atomic():
            prompt = Prompt.objects.create(project=project, name=name, description=description, created_by=actor)
    except IntegrityError:
        raise Conflict(f"Prompt {name!r} already exists in {project.slug}.", fields={"name": ["Already exists."]}) from None
    return prompt


def prompt_content_sha256(*, template, model_params):
    return sha256_text(canonical_json({"template": template, "model_params": model_params}))


def prompt_version_commit(*, prompt, template, actor, model_params=None, message="", parent=None, tags=()):
    """Append version n+1. Numbers are gap-free under concurrency: the prompt row's counter is
    bumped first in the transaction, which serialises committers on that row (a row lock on
    PostgreSQL, the write lock on SQLite)."""
    role_require(project=prompt.project, user=actor, role=Role.EDITOR)
    model_params = model_params if model_params is not None else {}
    if not isinstance(template, str) or not template.strip():
        raise ValidationFailed("The template is empty.", fields={"template": ["Required."]})
    if not isinstance(model_params, dict):
        raise ValidationFailed("model_params must be a JSON object.", fields={"model_params": ["Must be an object."]})
    if parent is not None and parent.prompt_id != prompt.pk:
        raise ValidationFailed(f"Parent version belongs to another prompt ({parent}).", fields={"parent": ["Wrong prompt."]})
    tags = _tag_names_valid(tags)
    digest = prompt_content_sha256(template=template, model_params=model_params)
    try:
        with transaction.atomic():
            number = counter_next(owner=prompt, counter="version_count")
            head = PromptVersion.objects.filter(prompt=prompt, number=number - 1).first() if number > 1 else None
            if head is not None and head.sha256 == digest:
                raise Conflict(
                    f"Nothing to commit: the content is identical to the head, version {head.number} of {prompt.name}.",
                    fields={"template": ["Identical to the head version."]},
                )
            version = PromptVersion.objects.create(
                prompt=prompt,
                number=number,
                template=template,
                variables=template_variables(template),
                model_params=model_params,
                message=message,
                author=actor,
                parent=parent if parent is not None else head,
                sha256=digest,
            )
            _tags_create(names=tags, actor=actor, prompt_version=version)
            _emit(project=prompt.project, event="prompt_version.committed", payload={"prompt": prompt.name, "version": number, "sha256": digest})
    except IntegrityError:
        raise RetryableConflict(f"Another commit to {prompt.name} happened at the same moment; send the request again.") from None
    prompt.version_count = number
    return version


# ---------------------------------------------------------------- models and checkpoints


@transaction.atomic
def model_create(*, project, name, actor, base_ref="", base_revision="", description=""):
    role_require(project=project, user=actor, role=Role.EDITOR)
    _check_name("model", name)
    try:
        with transaction.atomic():
            return Model.objects.create(project=project, name=name, base_ref=base_ref, base_revision=base_revision, description=description, created_by=actor)
    except IntegrityError:
        raise Conflict(f"Model {name!r} already exists in {project.slug}.", fields={"name": ["Already exists."]}) from None


def _manifest_sha256(entries):
    return sha256_text(canonical_json(sorted(entries)))


def checkpoint_register(
    *,
    model,
    kind,
    actor,
    files=None,
    external_ref="",
    external_revision="",
    architecture="causal-lm",
    metadata=None,
    weight_change=None,
    message="",
    parents=(),
    lineage_method="",
    forget_dataset_sha256="",
    retain_dataset_sha256="",
    run=None,
    tags=(),
    endpoint=None,
):
    """Register a checkpoint: validate the files, store each once by hash, then write the rows
    (the checkpoint, its files, lineage edges and ``tags``) in one transaction.

    Validation happens before anything is stored; a refused checkpoint stores nothing."""
    role_require(project=model.project, user=actor, role=Role.EDITOR)
    if kind not in CheckpointKind.values:
        raise ValidationFailed(f"Unknown checkpoint kind {kind!r}; expected one of {', '.join(CheckpointKind.values)}.")
    if architecture not in ("causal-lm", "vision-language"):
        raise ValidationFailed(f"Unknown architecture {architecture!r}; expected causal-lm or vision-language.")
    for parent, relation in parents:
        if relation not in Relation.values:
            raise ValidationFailed(f"Unknown lineage relation {relation!r}; expected one of {', '.join(Relation.values)}.")
        if parent.model.project_id != model.project_id:
            raise ValidationFailed("A lineage parent must belong to the same project.")
    tags = _tag_names_valid(tags)
    if endpoint and kind != CheckpointKind.ENDPOINT:
        raise ValidationFailed("Only an endpoint checkpoint takes an endpoint.", fields={"endpoint": ["Only with kind 'endpoint'."]})
    if kind == CheckpointKind.ENDPOINT:
        if files or external_ref or external_revision:
            raise ValidationFailed("An endpoint checkpoint names a served model behind an endpoint profile; it takes no files or external_ref.")
        endpoint = endpoint_spec_clean(endpoint)
        cleaned = {}
        digest = sha256_text(canonical_json({"endpoint": endpoint}))
    elif kind == CheckpointKind.REFERENCE:
        if files:
            raise ValidationFailed("A reference checkpoint points at external weights and takes no files.")
        if not external_ref:
            raise ValidationFailed("A reference checkpoint needs external_ref (a hub id or a local path).", fields={"external_ref": ["Required."]})
        cleaned = {}
        digest = sha256_text(canonical_json({"ref": external_ref, "revision": external_revision}))
    else:
        cleaned = checkpoint_files.checkpoint_files_validate(kind=kind, files=files or {})
        if kind == CheckpointKind.ADAPTER and not parents:
            raise ValidationFailed("An adapter checkpoint needs a parent checkpoint to apply to (its base).", fields={"parents": ["Required for adapters."]})
        digest = None
    stored = {name: blob_store.blob_put_path(path) for name, path in cleaned.items()}
    if digest is None:
        digest = _manifest_sha256([(name, blob.sha256) for name, blob in stored.items()])
    with transaction.atomic():
        number = counter_next(owner=model, counter="checkpoint_count")
        checkpoint = Checkpoint.objects.create(
            model=model,
            number=number,
            kind=kind,
            external_ref=external_ref,
            external_revision=external_revision,
            architecture=architecture,
            message=message,
            metadata=metadata or {},
            weight_change=weight_change or {},
            sha256=digest,
            endpoint=endpoint or {},
            total_size=sum(blob.size for blob in stored.values()),
            generation=1 + max((parent.generation for parent, _ in parents), default=-1),
            created_by=actor,
            created_by_run=run,
        )
        CheckpointFile.objects.bulk_create([CheckpointFile(checkpoint=checkpoint, path=name, blob=blob, size=blob.size) for name, blob in sorted(stored.items())])
        LineageEdge.objects.bulk_create(
            [
                LineageEdge(
                    child=checkpoint,
                    parent=parent,
                    relation=relation,
                    method=lineage_method,
                    forget_dataset_sha256=forget_dataset_sha256,
                    retain_dataset_sha256=retain_dataset_sha256,
                )
                for parent, relation in parents
            ]
        )
        _tags_create(names=tags, actor=actor, checkpoint=checkpoint)
        _emit(project=model.project, event="checkpoint.registered", payload={"model": model.name, "checkpoint": number, "id": checkpoint.pk, "kind": kind})
    model.checkpoint_count = number
    return checkpoint


# Generation settings an endpoint checkpoint may fix (sent with every request to it): the
# OpenAI chat-completions names. An evaluation's own generation config comes on top for what it
# sets (max_new_tokens -> max_tokens; temperature and top_p when it samples).
ENDPOINT_PARAMETERS = {"temperature": float, "top_p": float, "max_tokens": int, "seed": int, "frequency_penalty": float, "presence_penalty": float, "stop": list}


def endpoint_spec_clean(endpoint) -> dict:
    """{"profile", "model", "parameters", "adapter"} checked: the profile is one the operator
    defines (versions.endpoints), never a URL; the model is the name the server serves it under;
    the optional adapter is the name of a LoRA module served next to that base (vLLM's
    ``--lora-modules NAME=path``), which requests then name as their model. Without an adapter the
    spec (and so the checkpoint's hash) is as it always was."""
    from versions.endpoints import EndpointConfigError, endpoint_profile

    if not isinstance(endpoint, dict):
        raise ValidationFailed("An endpoint checkpoint needs endpoint {profile, model, parameters}.", fields={"endpoint": ["Required."]})
    unknown = sorted(set(endpoint) - {"profile", "model", "parameters", "adapter"})
    if unknown:
        raise ValidationFailed(f"Unknown endpoint keys {unknown}; expected profile, model, parameters, adapter.", fields={"endpoint": ["Unknown keys."]})
    adapter = endpoint.get("adapter") or ""
    if not isinstance(adapter, str) or len(adapter) > 200:
        raise ValidationFailed("endpoint.adapter is the served LoRA adapter's name (at most 200 characters).", fields={"endpoint": ["Invalid adapter."]})
    profile, served = endpoint.get("profile"), endpoint.get("model")
    if not isinstance(profile, str) or not profile:
        raise ValidationFailed("endpoint.profile names an endpoint profile from LETHE_ENDPOINTS.", fields={"endpoint": ["profile is required."]})
    try:
        endpoint_profile(profile)
    except EndpointConfigError as exc:
        raise ValidationFailed(str(exc), fields={"endpoint": ["Unknown profile."]}) from None
    if not isinstance(served, str) or not served.strip() or len(served) > 500:
        raise ValidationFailed("endpoint.model is the served model name (at most 500 characters).", fields={"endpoint": ["model is required."]})
    parameters = endpoint.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValidationFailed("endpoint.parameters must be an object.", fields={"endpoint": ["parameters must be an object."]})
    for key, value in parameters.items():
        kind = ENDPOINT_PARAMETERS.get(key)
        if kind is None:
            raise ValidationFailed(f"Unknown endpoint parameter {key!r}; expected some of {', '.join(ENDPOINT_PARAMETERS)}.", fields={"endpoint": [f"Unknown parameter {key}."]})
        valid = (
            (isinstance(value, list) and all(isinstance(item, str) for item in value))
            if kind is list
            else (not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int))
        )
        if not valid:
            raise ValidationFailed(
                f"Endpoint parameter {key} must be {'a list of strings' if kind is list else kind.__name__}, got {value!r}.", fields={"endpoint": [f"Invalid {key}."]}
            )
    cleaned = {"profile": profile, "model": served.strip(), "parameters": dict(sorted(parameters.items()))}
    if adapter.strip():
        cleaned["adapter"] = adapter.strip()
    return cleaned


def checkpoint_register_directory(*, model, directory, actor, kind=None, **options):
    from pathlib import Path

    directory = Path(directory)
    if not directory.is_dir():
        raise ValidationFailed(f"{directory} is not a directory.")
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise checkpoint_files.UnsafeInput(f"{path.relative_to(directory)}: symbolic links are refused.")
        if path.is_file() and not path.name.startswith(".lethe-"):
            files[path.relative_to(directory).as_posix()] = path
    kind = kind or checkpoint_files.infer_kind(files)
    return checkpoint_register(model=model, kind=kind, actor=actor, files=files, **options)


@transaction.atomic
def lineage_edge_add(*, child, parent, relation, actor, method=""):
    role_require(project=child.model.project, user=actor, role=Role.EDITOR)
    if relation not in Relation.values:
        raise ValidationFailed(f"Unknown lineage relation {relation!r}.")
    if child.pk == parent.pk:
        raise ValidationFailed("A checkpoint cannot be its own parent.")
    if child.model.project_id != parent.model.project_id:
        raise ValidationFailed("A lineage parent must belong to the same project.")
    from versions.selectors import checkpoint_ancestors

    if any(ancestor.pk == child.pk for ancestor, _ in checkpoint_ancestors(checkpoint=parent)):
        raise ValidationFailed(f"{parent} descends from {child}: the edge would make a cycle.")
    edge, created = LineageEdge.objects.get_or_create(child=child, parent=parent, relation=relation, defaults={"method": method})
    if not created:
        raise Conflict("That lineage edge exists already.")
    return edge


# ---------------------------------------------------------------- labels


def _label_lock(*, project, name, prompt=None, model=None):
    """The label row, locked for this transaction; None if it does not exist yet."""
    target = {"prompt": prompt} if prompt is not None else {"model": model}
    return Label.objects.select_for_update().filter(name=name, **target).first()


def _label_name_free(*, name, prompt=None, model=None):
    """Refuse a new label whose name differs only in case from one its owner has: readers take
    ``Production`` for ``production``, and protection is decided case-insensitively. (A unique
    index on the lowercased name is the last line of defence.)"""
    owner = {"prompt": prompt} if prompt is not None else {"model": model}
    existing = Label.objects.filter(name__iexact=name, **owner).values_list("name", flat=True).first()
    if existing is not None:
        kind, owner_name = ("prompt", prompt.name) if prompt is not None else ("model", model.name)
        raise Conflict(
            f"The {kind} {owner_name!r} has a label {existing!r}; label names are compared regardless of case, so {name!r} would be the same label. Move {existing!r} instead.",
            fields={"name": ["Differs only in case from an existing label."]},
        )


def label_move(*, name, actor, checkpoint=None, prompt_version=None, reason="", evaluation=None, branch=None, acknowledge_less_safe=False):
    """Point a label at a version: its creation, a rollback (to a version that held this label
    before, by its own history) or a promotion (to any other version, older or newer by number).

    With the project's promotion gate on, a promotion (or a branch advance) of a protected label
    must cite an evaluation the registered promotion policy accepts; a rollback is always allowed
    and needs no evidence. Each move appends a LabelEvent and an audit event in the same
    transaction as the move, so the label always equals its last event, whatever runs concurrently.

    When the latest finished evaluation between the current version and the target measured the
    target less safe (selectors.label_move_impact), the move is refused (LessSafeTarget, 409)
    unless ``acknowledge_less_safe``; the audit event records the warning and the acknowledgement.
    The returned event carries ``impact``: what the move did, as the preview showed it."""
    if (checkpoint is None) == (prompt_version is None):
        raise ValidationFailed("Give exactly one of checkpoint or prompt_version.")
    _check_name("label", name)
    owner = checkpoint.model if checkpoint is not None else prompt_version.prompt
    project = owner.project
    role = role_require(project=project, user=actor, role=Role.EDITOR)
    protected = project.label_is_protected(name)
    if protected and role < project.protected_label_role:
        raise Forbidden(f"Moving {name!r} needs the {Role(project.protected_label_role).label} role; you are {role.label}.")
    target = checkpoint if checkpoint is not None else prompt_version
    try:
        with transaction.atomic():
            label = _label_lock(project=project, name=name, prompt=owner if prompt_version else None, model=owner if checkpoint else None)
            if label is None:
                _label_name_free(name=name, prompt=owner if prompt_version else None, model=owner if checkpoint else None)
                with transaction.atomic():
                    label = Label.objects.create(
                        project=project,
                        name=name,
                        is_branch=bool(branch),
                        **({"prompt": owner, "prompt_version": target} if prompt_version else {"model": owner, "checkpoint": target}),
                    )
                previous = None
                action = LabelAction.CREATE
            else:
                # Read after the lock, not joined into the locking statement: a row locked after
                # a concurrent move is re-read by PostgreSQL, but a joined row is not (it came
                # back NULL in test_concurrent_promote_and_rollback_leave_label_equal_to_last_event).
                previous = label.checkpoint if checkpoint is not None else label.prompt_version
                if previous.pk == target.pk:
                    raise Conflict(f"{name!r} already points at {target}.")
                # A rollback returns to a version this label held before; numbers say nothing
                # about that (a lower-numbered checkpoint may never have been evaluated).
                held_before = selectors.label_held_before(label=label, target=target)
                if branch:
                    action = LabelAction.ADVANCE
                elif held_before:
                    action = LabelAction.ROLLBACK
                else:
                    action = LabelAction.PROMOTE
                if protected and project.require_evaluation_for_promotion and not held_before:
                    _promotion_gate(project=project, label_name=name, current=previous, target=target, evaluation=evaluation)
            impact = selectors.label_move_impact(project=project, label_name=name, current=previous, target=target, action=action, evaluation=evaluation)
            if impact["less_safe"] and not acknowledge_less_safe and not branch:
                raise LessSafeTarget(
                    f"{impact['warning']} Moving {name!r} there anyway needs an explicit acknowledgement "
                    "(acknowledge_less_safe in the API, --acknowledge-less-safe in move_label, the checkbox on the label page).",
                    warning=impact["warning"],
                    impact=impact,
                )
            if previous is not None:
                if checkpoint is not None:
                    label.checkpoint = checkpoint
                else:
                    label.prompt_version = prompt_version
                if branch is not None:
                    label.is_branch = bool(branch)
                label.save()
            event = LabelEvent.objects.create(
                label=label,
                action=action,
                actor=actor,
                reason=reason,
                **(
                    {"from_checkpoint": previous, "to_checkpoint": checkpoint} if checkpoint is not None else {"from_prompt_version": previous, "to_prompt_version": prompt_version}
                ),
            )
            audit_record(
                project=project,
                actor=actor,
                action="label.move",
                object_type="label",
                object_id=label.pk,
                data={
                    "name": name,
                    "on": f"{'model' if checkpoint else 'prompt'}:{owner.name}",
                    "action": action,
                    "from": previous.number if previous else None,
                    "to": target.number,
                    "reason": reason,
                    "evaluation": evaluation.pk if evaluation else None,
                    # Only a move to a version measured less safe: what was measured, and that
                    # the mover acknowledged it (the move is refused otherwise).
                    **({"less_safe_warning": impact["warning"], "acknowledged_less_safe": True} if impact["less_safe"] else {}),
                },
            )
            promotion_evidence_record(label_event=event, evaluation=evaluation)
            # The returned event carries what the history shows of it: the cited evaluation too.
            event.evaluation, event.evaluation_id = evaluation, evaluation.pk if evaluation is not None else None
            event.impact = impact
            _emit(
                project=project,
                event="label.moved",
                payload={"label": name, "on": owner.name, "action": action, "from": previous.number if previous else None, "to": target.number},
            )
    except IntegrityError:
        raise RetryableConflict(f"Label {name!r} was created concurrently; send the request again.") from None
    return event


def _promotion_gate(*, project, label_name, current, target, evaluation):
    """Refuse the move unless the registered promotion policy accepts ``evaluation`` as evidence
    that ``target`` may replace ``current``; with no policy registered, refuse (fail closed)."""
    from versions.promotion import promotion_policy

    if evaluation is None:
        raise Forbidden(
            f"This project's promotion gate requires moving {label_name!r} to {target}, which never held it, to cite an "
            f"evaluation of {target} (arm B) against the current {current} (arm A); none was given. Moving back to a "
            "version the label held before is a rollback and needs none.",
            fields={"evaluation": ["Required by the promotion gate."]},
        )
    policy = promotion_policy()
    if policy is None:
        raise Forbidden("The promotion gate is on but no promotion policy is installed; every promotion is refused.", fields={"evaluation": ["No promotion policy installed."]})
    failures = policy(project=project, label_name=label_name, current=current, target=target, evaluation=evaluation)
    if failures:
        raise Forbidden(
            f"Promotion of {label_name!r} to {target} refused by the gate: " + "; ".join(failures) + ".",
            fields={"evaluation": failures},
        )


def label_branch_advance(*, run_checkpoint, parent, name, actor):
    """A branch label follows its head: advance it when a run produced a child of its head."""
    label = Label.objects.filter(model=parent.model, name=name).first()
    if label is not None and label.checkpoint_id != parent.pk:
        return None
    return label_move(name=name, actor=actor, checkpoint=run_checkpoint, reason=f"branch follows run output of {parent}", branch=True)


# ---------------------------------------------------------------- tags


def _tag_names_valid(names):
    """``names`` as a sorted list without repeats, each 1-100 characters without surrounding spaces."""
    if isinstance(names, str) or not all(isinstance(name, str) and 0 < len(name) <= 100 and name.strip() == name for name in names):
        raise ValidationFailed("A tag is 1-100 characters without surrounding spaces.", fields={"tags": ["Invalid tag."]})
    return sorted(set(names))


def _tags_create(*, names, actor, checkpoint=None, prompt_version=None):
    """Tags of a version being created, in its transaction (nothing to collide with yet)."""
    Tag.objects.bulk_create([Tag(name=name, checkpoint=checkpoint, prompt_version=prompt_version, created_by=actor) for name in names])


def tag_add(*, name, actor=None, checkpoint=None, prompt_version=None):
    if (checkpoint is None) == (prompt_version is None):
        raise ValidationFailed("Give exactly one of checkpoint or prompt_version.")
    if not isinstance(name, str) or not 0 < len(name) <= 100 or name.strip() != name:
        raise ValidationFailed("A tag is 1-100 characters without surrounding spaces.", fields={"name": ["Invalid tag."]})
    owner = checkpoint.model if checkpoint is not None else prompt_version.prompt
    if actor is not None:
        role_require(project=owner.project, user=actor, role=Role.EDITOR)
    target = {"checkpoint": checkpoint} if checkpoint is not None else {"prompt_version": prompt_version}
    try:
        with transaction.atomic():
            tag, _ = Tag.objects.get_or_create(name=name, **target, defaults={"created_by": actor})
    except IntegrityError:
        tag = Tag.objects.get(name=name, **target)
    return tag


@transaction.atomic
def tag_remove(*, tag, actor):
    owner = tag.checkpoint.model if tag.checkpoint_id else tag.prompt_version.prompt
    role_require(project=owner.project, user=actor, role=Role.EDITOR)
    audit_record(
        project=owner.project, actor=actor, action="tag.remove", object_type="tag", object_id=tag.pk, data={"name": tag.name, "on": str(tag.checkpoint or tag.prompt_version)}
    )
    tag.delete()


# ---------------------------------------------------------------- datasets


@transaction.atomic
def dataset_create(*, project, name, actor, description="", kind=DatasetKind.TEXT):
    role_require(project=project, user=actor, role=Role.EDITOR)
    _check_name("dataset", name)
    if kind not in DatasetKind.values:
        raise ValidationFailed(f"Unknown dataset kind {kind!r}; expected one of {', '.join(DatasetKind.values)}.", fields={"kind": ["Unknown kind."]})
    try:
        with transaction.atomic():
            return Dataset.objects.create(project=project, name=name, description=description, created_by=actor, kind=kind)
    except IntegrityError:
        raise Conflict(f"Dataset {name!r} already exists in {project.slug}.", fields={"name": ["Already exists."]}) from None


def dataset_rows_validate(rows):
    """Rows are objects with non-empty string ``prompt`` and ``response`` (and optional string
    ``category``). Errors name the row (1-based)."""
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed("A dataset version needs at least one row.", fields={"rows": ["Required."]})
    cleaned = []
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ValidationFailed(f"Row {index}: expected an object with prompt and response.", fields={"rows": [f"row {index}"]})
        for key in ("prompt", "response"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ValidationFailed(f"Row {index}: '{key}' must be a non-empty string.", fields={"rows": [f"row {index}: {key}"]})
        extra = set(row) - {"prompt", "response", "category"}
        if extra:
            raise ValidationFailed(f"Row {index}: unknown field(s) {', '.join(sorted(extra))}.", fields={"rows": [f"row {index}"]})
        if "category" in row and not isinstance(row["category"], str):
            raise ValidationFailed(f"Row {index}: 'category' must be a string.", fields={"rows": [f"row {index}: category"]})
        cleaned.append({key: row[key] for key in ("prompt", "response", "category") if key in row})
    return cleaned


def dataset_rows_of_kind_validate(*, kind, numbered_rows, unit):
    """Rows of a kind other than text, each checked by the validator its app registered
    (versions.dataset_kinds). Every bad row is reported with its number (``unit`` says whether
    it counts rows of a request or lines of a file), shown up to the tabular reader's cap; any
    error refuses them all."""
    from versions.dataset_kinds import dataset_row_validator_for
    from versions.tabular import error_lines

    validator = dataset_row_validator_for(kind)
    cleaned, errors = [], []
    for number, row in numbered_rows:
        if not isinstance(row, dict):
            errors.append((number, "expected an object"))
            continue
        try:
            cleaned.append(validator(row))
        except ValueError as exc:
            errors.append((number, str(exc)))
    if errors:
        shown = error_lines(errors, unit=unit)
        field = "rows" if unit == "row" else "file"
        raise ValidationFailed(f"Invalid {kind} rows, nothing stored: {'; '.join(shown)}", fields={field: shown})
    if not cleaned:
        raise ValidationFailed("A dataset version needs at least one row.", fields={"rows": ["Required."]})
    return cleaned


def dataset_version_create(*, dataset, rows, actor, message=""):
    role_require(project=dataset.project, user=actor, role=Role.EDITOR)
    if dataset.kind == DatasetKind.TEXT:
        cleaned = dataset_rows_validate(rows)
    else:
        if not isinstance(rows, list) or not rows:
            raise ValidationFailed("A dataset version needs at least one row.", fields={"rows": ["Required."]})
        cleaned = dataset_rows_of_kind_validate(kind=dataset.kind, numbered_rows=enumerate(rows, start=1), unit="row")
    content = "".join(canonical_json(row) + "\n" for row in cleaned).encode("utf-8")
    blob = blob_store.blob_put_bytes(content)
    with transaction.atomic():
        number = counter_next(owner=dataset, counter="version_count")
        head = DatasetVersion.objects.filter(dataset=dataset, number=number - 1).first()
        if head is not None and head.sha256 == blob.sha256:
            raise Conflict(f"Nothing to commit: identical to version {head.number} of {dataset.name}.")
        version = DatasetVersion.objects.create(dataset=dataset, number=number, blob=blob, sha256=blob.sha256, row_count=len(cleaned), message=message, created_by=actor)
    dataset.version_count = number
    return version


DATASET_COLUMNS = ("prompt", "response", "category")


def dataset_version_import(*, dataset, data, fmt, actor, message="", max_line_bytes=64 * 1024):
    """A dataset version from an uploaded JSONL or CSV file of prompt/response rows (or, for a
    dataset of another kind, rows in that kind's canonical columns).

    Every problem is reported with its line ("line 7: 'response' is missing or empty"), up to the
    reader's cap; any problem refuses the whole file, so nothing is half-imported."""
    from versions.tabular import TabularError, read_records, require_values

    role_require(project=dataset.project, user=actor, role=Role.EDITOR)
    try:
        records = read_records(data, fmt, max_line_bytes=max_line_bytes)
        if not records:
            raise TabularError("the file has no rows, nothing imported")
        if dataset.kind != DatasetKind.TEXT:
            rows = dataset_rows_of_kind_validate(kind=dataset.kind, numbered_rows=records, unit="line")
            return dataset_version_create(dataset=dataset, rows=rows, actor=actor, message=message)
        require_values(records, ("prompt", "response"))
        rows = _text_rows_from_records(records)
    except TabularError as exc:
        raise ValidationFailed(exc.render(), fields={"file": exc.messages() or [exc.summary]}) from None
    return dataset_version_create(dataset=dataset, rows=rows, actor=actor, message=message)


def _text_rows_from_records(records):
    from versions.tabular import TabularError

    rows, errors = [], []
    for line, record in records:
        extra = sorted(set(record) - set(DATASET_COLUMNS))
        if extra:
            errors.append((line, f"unknown column(s) {', '.join(extra)}; expected prompt, response and optional category"))
            continue
        category = record.get("category")
        if category is not None and not isinstance(category, str):
            errors.append((line, "'category' must be a string"))
            continue
        row = {"prompt": record["prompt"], "response": record["response"]}
        if category:  # an empty CSV cell means no category
            row["category"] = category
        rows.append(row)
    if errors:
        raise TabularError("invalid rows, nothing imported", errors)
    return rows


# ---------------------------------------------------------------- projects (destructive)


def project_delete(*, project, actor):
    """Delete a project and everything in it; admin only, recorded in the audit trail.

    Versions are immutable and protected against deletion one by one; deleting a whole project
    removes rows children first (the bundle's order reversed). Blobs stay: they are shared by
    content and may belong to other projects."""
    from versions.project_scope import PROJECT_SCOPES, project_rows

    role_require(project=project, user=actor, role=Role.ADMIN)
    slug = project.slug
    with transaction.atomic():
        PromptVersion.objects.filter(prompt__project=project).update(parent=None)
        project_deleting.send(sender="versions", project=project)
        for label, lookup in reversed(PROJECT_SCOPES):
            project_rows(label, lookup, project).delete()
        audit_record(project=None, actor=actor, action="project.delete", object_type="project", object_id=slug, data={"slug": slug})
