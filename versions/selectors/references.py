"""References as the API shows them (``name@label``, ``name@number``, ``dataset@latest`` or an id) resolved to versions: every write that takes a version resolves it here."""

from versions import sql
from core.errors import NotFound, ValidationFailed
from versions.models import Checkpoint, DatasetVersion, Label, Model, Prompt, PromptVersion
from versions.selectors.checkpoints import checkpoint_get
from versions.selectors.datasets import dataset_get, dataset_version_get, dataset_versions
from versions.selectors.prompts import prompt_version_get


def _label_target(*, project, owner_name, label_name, kind):
    """The version a label points at, or None. Its owner (prompt or model) comes with the id,
    project and name; other owner fields load on first access."""
    target = sql.label_target(kind=kind, project_id=project.pk, owner_name=owner_name, label_name=label_name)
    if target is None:
        return None
    owner_field = type(target)._meta.get_field("model" if kind == "model" else "prompt")
    owner = owner_field.related_model.from_db(target._state.db, ["id", "project_id", "name"], [getattr(target, owner_field.attname), project.pk, target.owner_name])
    owner.project = project
    setattr(target, owner_field.name, owner)
    return target


def label_resolve(*, project, ref, kind=None):
    """Resolve ``name@label`` or ``name@<number>`` to a PromptVersion or Checkpoint.

    ``kind`` ("prompt" or "model") settles a name used by both; otherwise that is an error."""
    if not isinstance(ref, str) or ref.count("@") != 1:
        raise ValidationFailed(f"Malformed reference {ref!r}: expected name@label or name@number.")
    name, selector = ref.split("@")
    if kind in ("prompt", "model") and not selector.isdigit():
        # The hot path (serving reads name@production): the label's target in one statement.
        # Misses fall through to the lookups below, which say what is missing.
        found = _label_target(project=project, owner_name=name, label_name=selector, kind=kind)
        if found is not None:
            return found
    prompt = Prompt.objects.filter(project=project, name=name).first() if kind in (None, "prompt") else None
    model = Model.objects.filter(project=project, name=name).first() if kind in (None, "model") else None
    if prompt and model:
        raise ValidationFailed(f"{name!r} is both a prompt and a model; say which (kind=prompt or kind=model).")
    owner = prompt or model
    if owner is None:
        raise NotFound(f"No prompt or model named {name!r} in {project.slug}.")
    if selector.isdigit():
        if prompt:
            return prompt_version_get(prompt=prompt, number=int(selector))
        return checkpoint_get(model=model, number=int(selector))
    if prompt:
        label = Label.objects.filter(prompt=prompt, name=selector).select_related("prompt_version__prompt").first()
        if label is None:
            raise NotFound(f"Prompt {name!r} has no label {selector!r}.")
        return label.prompt_version
    label = Label.objects.filter(model=model, name=selector).select_related("checkpoint__model").first()
    if label is None:
        raise NotFound(f"Model {name!r} has no label {selector!r}.")
    return label.checkpoint


def _is_id(ref):
    return (isinstance(ref, int) and not isinstance(ref, bool)) or (isinstance(ref, str) and ref.isdigit())


def checkpoint_resolve(*, project, ref):
    """A checkpoint of ``project`` named the way the API shows it, ``model@number`` or
    ``model@label``, or by its id (an int or its digits). Every write that takes a checkpoint
    resolves it here."""
    if _is_id(ref):
        checkpoint = Checkpoint.objects.filter(pk=int(ref), model__project=project).select_related("model").first()
        if checkpoint is None:
            raise NotFound(f"No checkpoint {ref} in {project.slug}.")
        return checkpoint
    return label_resolve(project=project, ref=ref, kind="model")


def prompt_version_resolve(*, project, ref):
    """A prompt version of ``project``: ``prompt@number``, ``prompt@label`` or its id; None or
    "" stays None."""
    if ref in (None, ""):
        return None
    if _is_id(ref):
        version = PromptVersion.objects.filter(pk=int(ref), prompt__project=project).select_related("prompt").first()
        if version is None:
            raise NotFound(f"No prompt version {ref} in {project.slug}.")
        return version
    return label_resolve(project=project, ref=ref, kind="prompt")


def dataset_version_resolve(*, project, ref, kind=None, allow_empty=False):
    """A dataset version of ``project`` (with its dataset) from what the API shows:
    ``dataset@number``, ``dataset@latest`` or a bare ``dataset`` (its newest version), or the
    version's id; None or "" stays None. ``kind`` requires that dataset kind. With
    ``allow_empty``, the newest version of a dataset that has none yet is None, not an error."""
    if ref in (None, ""):
        return None
    if _is_id(ref):
        version = DatasetVersion.objects.filter(pk=int(ref), dataset__project=project).select_related("dataset").first()
        if version is None:
            raise NotFound(f"No dataset version {ref} in {project.slug}.")
        dataset = version.dataset
    else:
        if not isinstance(ref, str) or ref.count("@") > 1 or not ref.strip("@"):
            raise ValidationFailed(f"Malformed dataset version reference {ref!r}: expected dataset@number, dataset@latest (or an id).")
        name, _, selector = ref.partition("@")
        if selector not in ("", "latest") and not selector.isdigit():
            raise ValidationFailed(f"Malformed dataset version reference {ref!r}: the version is a number or 'latest'.")
        dataset = dataset_get(project=project, name=name)
        _dataset_kind_check(dataset, kind)
        if selector in ("", "latest"):
            version = dataset_versions(dataset=dataset).select_related("blob").first()
            if version is None and not allow_empty:
                raise NotFound(f"Dataset {name!r} has no versions yet.")
        else:
            version = dataset_version_get(dataset=dataset, number=int(selector))
    _dataset_kind_check(dataset, kind)
    if version is not None:
        version.dataset = dataset
    return version


def _dataset_kind_check(dataset, kind):
    if kind is not None and dataset.kind != kind:
        raise ValidationFailed(f"Dataset {dataset.name!r} is a {dataset.kind} dataset; a {kind} dataset is needed here.")
