"""Which function checks the rows of each dataset kind other than text. The app that owns a kind's
row schema registers its row validator by dotted path in ``AppConfig.ready`` (as run kinds do,
jobs.registry), so the registry never imports the apps above it.

A row validator takes one row (a dict, as parsed from JSON or a CSV line) and returns the
canonical row to store, or raises ValueError with a message that names the bad field; the
registry's caller adds the row's or line's number.
"""

from django.utils.module_loading import import_string

_ROW_VALIDATORS: dict[str, str] = {}


def register_dataset_row_validator(kind: str, dotted_path: str) -> None:
    _ROW_VALIDATORS[kind] = dotted_path


def dataset_row_validator_for(kind: str):
    try:
        return import_string(_ROW_VALIDATORS[kind])
    except KeyError:
        raise LookupError(f"no row validator registered for dataset kind {kind!r}") from None
