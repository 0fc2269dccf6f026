"""Projects, their settings and members, users and API tokens; the destructive deletion of a whole project."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import Conflict, NotFound, ValidationFailed
from versions.events import project_deleting
from versions.models import ApiToken, DatasetKind, Membership, Project, PromptVersion, Role
from versions.permissions import forget_cached_roles, role_require
from versions.services.audit import audit_record


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


def project_delete(*, project, actor):
    """Delete a project and everything in it; admin only, recorded in the audit trail.

    Versions are immutable and protected against deletion one by one; deleting a whole project
    removes rows children first (the bundle's order reversed). Blobs stay: they are shared by
    content and may belong to other projects."""
    from versions.project_scope import project_rows, project_scopes

    role_require(project=project, user=actor, role=Role.ADMIN)
    slug = project.slug
    with transaction.atomic():
        PromptVersion.objects.filter(prompt__project=project).update(parent=None)
        project_deleting.send(sender="versions", project=project)
        for scope in reversed(project_scopes()):
            project_rows(scope, project).delete()
        audit_record(project=None, actor=actor, action="project.delete", object_type="project", object_id=slug, data={"slug": slug})
