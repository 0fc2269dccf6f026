"""Tags on checkpoints and prompt versions."""

from django.db import IntegrityError, transaction

from core.errors import ValidationFailed
from versions.models import Role, Tag
from versions.permissions import role_require
from versions.services.audit import audit_record


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
