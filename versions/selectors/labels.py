"""Labels and their history."""

from core.errors import NotFound
from versions.models import Label, LabelEvent
from versions.promotion import label_events_with_evidence


def labels_for_owner(*, prompt=None, model=None):
    qs = Label.objects.filter(prompt=prompt) if prompt is not None else Label.objects.filter(model=model)
    return qs.select_related("prompt", "prompt_version", "model", "checkpoint").order_by("name")


def label_get(*, project, owner_kind, owner_name, name):
    filters = {"prompt__name": owner_name} if owner_kind == "prompt" else {"model__name": owner_name}
    label = Label.objects.filter(project=project, name=name, **filters).select_related("prompt", "prompt_version", "model", "checkpoint").first()
    if label is None:
        raise NotFound(f"No label {name!r} on {owner_kind} {owner_name!r}.")
    return label


def label_events(*, label):
    return label_events_with_evidence(
        LabelEvent.objects.filter(label=label).select_related("actor", "from_prompt_version", "to_prompt_version", "from_checkpoint", "to_checkpoint").order_by("-id")
    )


def label_history_for_model(*, model, limit):
    """The newest ``limit`` moves of the model's labels, oldest first, as (label name, time,
    action, to checkpoint number or None for a deletion) tuples: one query, for the label lanes
    of the safety charts."""
    rows = list(LabelEvent.objects.filter(label__model=model).order_by("-id").values_list("label__name", "created_at", "action", "to_checkpoint__number")[:limit])
    return rows[::-1]
