"""Datasets and their versions: rows validated by kind, stored as canonical JSONL, imported from JSONL or CSV."""

from django.db import IntegrityError, transaction

from versions import blob_store
from core.errors import Conflict, ValidationFailed
from core.tabular import TabularError, error_lines, read_records, require_values
from versions.hashing import canonical_json
from versions.models import Dataset, DatasetKind, DatasetVersion, Role
from versions.permissions import role_require
from versions.sql import counter_next
from versions.services.common import _check_name


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
