"""Which run produced a checkpoint is the producing app's record (an unlearning run's
``produced_checkpoint``), not a key the registry holds into the runs above it. The registry shows
it (the API's ``created_by_run``) through this hook, as it shows promotion evidence
(versions.promotion): the producing app registers, by dotted path in ``AppConfig.ready``, an
expression giving the producing run's id over a Checkpoint queryset's ``pk``, so the checkpoint
list reads it in the statement that reads the checkpoints."""

from django.db.models import IntegerField, Value
from django.utils.module_loading import import_string

_PRODUCER = {"path": ""}


def register_checkpoint_producer(dotted_path: str) -> None:
    """Install ``producing_run_id() -> expression``: the id of the run that produced the
    checkpoint (None for one registered by a person), as an expression over ``OuterRef("pk")``."""
    _PRODUCER["path"] = dotted_path


def producing_run_id():
    """The expression to annotate a Checkpoint queryset with; NULL when no app produces checkpoints."""
    if not _PRODUCER["path"]:
        return Value(None, output_field=IntegerField())
    return import_string(_PRODUCER["path"])()
