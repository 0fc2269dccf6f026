"""Prompts and their versions: templates, their variables and rendering, gap-free commits."""

import re

from django.db import IntegrityError, transaction

from core.errors import Conflict, RetryableConflict, ValidationFailed
from versions.hashing import canonical_json, sha256_text
from versions.models import Prompt, PromptVersion, Role
from versions.permissions import role_require
from versions.sql import counter_next
from versions.services.common import _check_name, _emit
from versions.services.tags import _tag_names_valid, _tags_create


VARIABLE_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


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
