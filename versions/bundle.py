"""Backup and restore of one project as a self-contained bundle.

A bundle is a tar.gz holding ``manifest.json``, ``objects.json`` (every row of the project in
Django's JSON serialization: versions, labels and their history, lineage, datasets, suites, runs,
evaluations, audit events), ``users.json`` (the people those rows name; no password hashes,
restored users sign in after ``manage.py changepassword``) and ``blobs/<sha256>`` (every byte
the project references). Restoring into an empty installation keeps primary keys, so every hash
and every history is identical; users are matched by username.
"""
import datetime
import io
import json
import tarfile
import tempfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management.color import no_style
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from versions import artifacts
from versions.errors import Conflict, ValidationFailed

FORMAT = "lethe-bundle"
FORMAT_VERSION = 1


class _ExactTimeEncoder(DjangoJSONEncoder):
    """Django's encoder cuts datetimes to the millisecond; a restore must give back every timestamp as
    it was, to the microsecond (two events in one millisecond keep their order, and exporting a
    restored project gives the same bundle). Bundles written with milliseconds still read."""

    def default(self, o):
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


# Parents before children, so a restore inserts rows in an order the constraints accept.
PROJECT_SCOPES = [
    ("versions.Project", "pk"),
    ("versions.Membership", "project"),
    ("versions.Prompt", "project"),
    ("versions.PromptVersion", "prompt__project"),
    ("versions.Model", "project"),
    ("versions.Dataset", "project"),
    ("versions.DatasetVersion", "dataset__project"),
    ("jobs.Run", "project"),
    ("versions.Checkpoint", "model__project"),
    ("versions.CheckpointFile", "checkpoint__model__project"),
    ("versions.LineageEdge", "child__model__project"),
    ("unlearning.UnlearningRun", "run__project"),
    ("evals.Suite", "project"),
    ("evals.SuiteVersion", "suite__project"),
    ("evals.Case", "suite_version__suite__project"),
    ("evals.Evaluation", "project"),
    ("evals.CaseResult", "evaluation__project"),
    ("evals.Calibration", "project"),
    ("evals.CalibrationItem", "calibration__project"),
    ("versions.Label", "project"),
    ("versions.LabelEvent", "label__project"),
    ("versions.Tag", None),  # on a checkpoint or a prompt version of the project
    ("versions.AuditEvent", "project"),
]


def _queryset(label, lookup, project):
    model = apps.get_model(label)
    if label == "versions.Tag":
        from django.db.models import Q

        return model.objects.filter(Q(checkpoint__model__project=project) | Q(prompt_version__prompt__project=project)).order_by("pk")
    return model.objects.filter(**{lookup: project.pk if lookup == "pk" else project}).order_by("pk")


def _user_fields(model):
    User = get_user_model()
    return [f.attname for f in model._meta.concrete_fields if f.is_relation and f.related_model is User]


def _blob_fields(model):
    from versions.models import Blob

    return [f.attname for f in model._meta.concrete_fields if f.is_relation and f.related_model is Blob]


def project_export(*, project, path):
    """Write the project's bundle to ``path``; returns the manifest."""
    objects, user_ids, blob_ids, counts = [], set(), set(), {}
    for label, lookup in PROJECT_SCOPES:
        model = apps.get_model(label)
        rows = list(_queryset(label, lookup, project))
        counts[label] = len(rows)
        for row in rows:
            user_ids.update(getattr(row, attname) for attname in _user_fields(model))
            blob_ids.update(getattr(row, attname) for attname in _blob_fields(model))
        objects.extend(json.loads(serializers.serialize("json", rows, cls=_ExactTimeEncoder)))
    user_ids.discard(None)
    blob_ids.discard(None)
    users = [
        {"pk": u.pk, "username": u.username, "email": u.email, "first_name": u.first_name, "last_name": u.last_name, "is_active": u.is_active}
        for u in get_user_model().objects.filter(pk__in=user_ids).order_by("pk")
    ]
    from versions.models import Blob

    blobs = list(Blob.objects.filter(pk__in=blob_ids).order_by("pk"))
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "project": project.slug,
        "exported_at": timezone.now().isoformat(),
        "counts": counts,
        "blobs": {blob.sha256: blob.size for blob in blobs},
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in (("manifest.json", manifest), ("objects.json", objects), ("users.json", users)):
            data = json.dumps(payload, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for blob in blobs:
            info = tarfile.TarInfo(f"blobs/{blob.sha256}")
            info.size = blob.size
            with artifacts.blob_open(blob) as reader:
                archive.addfile(info, reader)
    return manifest


def _safe_extract(archive, directory):
    for member in archive.getmembers():
        name = member.name
        if not (member.isfile() or member.isdir()) or name.startswith("/") or ".." in Path(name).parts:
            raise ValidationFailed(f"Bundle member {name!r} is not a plain relative file; refusing the bundle.")
    archive.extractall(directory, filter="data")


def project_import(*, path):
    """Restore a bundle into this installation; refuses if any of its rows would collide."""
    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as scratch:
        scratch = Path(scratch)
        try:
            with tarfile.open(path, "r:*") as archive:
                _safe_extract(archive, scratch)
        except tarfile.TarError as exc:
            raise ValidationFailed(f"Not a Lethe bundle: {exc}.")
        try:
            manifest = json.loads((scratch / "manifest.json").read_text())
            objects = json.loads((scratch / "objects.json").read_text())
            users = json.loads((scratch / "users.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationFailed(f"Not a Lethe bundle (missing or unreadable manifest/objects/users): {exc}.")
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise ValidationFailed(f"Unsupported bundle format {manifest.get('format')!r} version {manifest.get('version')!r}.")
        from versions.models import Project

        if Project.objects.filter(slug=manifest["project"]).exists():
            raise Conflict(f"Project {manifest['project']!r} already exists here; restore into an installation without it.")
        _check_no_collisions(objects)
        _fill_fields_added_since(objects)
        for sha256, size in manifest["blobs"].items():
            blob_path = scratch / "blobs" / sha256
            digest, actual = artifacts.sha256_of_path(blob_path)
            if digest != sha256 or actual != size:
                raise ValidationFailed(f"Bundle blob {sha256} is damaged (hash {digest}); nothing was restored.")
        with transaction.atomic():
            user_map = _restore_users(users)
            for sha256 in manifest["blobs"]:
                artifacts.blob_put_path(scratch / "blobs" / sha256)
            restored = []
            with connection.constraint_checks_disabled():
                for item in serializers.deserialize("json", json.dumps(_remap_users(objects, user_map))):
                    item.save()
                    restored.append(type(item.object))
            connection.check_constraints(table_names=sorted({m._meta.db_table for m in restored}))
            _reset_sequences(set(restored))
        return manifest


def _fill_fields_added_since(objects):
    """Bundles written by an earlier release lack fields added since; derive them as the
    migrations that added them did: case result positions 1..n per evaluation in id order, and
    checkpoint generations from the bundle's lineage edges (parents come before children in id order)."""
    results = sorted((item for item in objects if item["model"] == "evals.caseresult" and "position" not in item["fields"]),
                     key=lambda item: item["pk"])
    next_position = {}
    for item in results:
        evaluation = item["fields"]["evaluation"]
        next_position[evaluation] = next_position.get(evaluation, 0) + 1
        item["fields"]["position"] = next_position[evaluation]
    checkpoints = sorted((item for item in objects if item["model"] == "versions.checkpoint"), key=lambda item: item["pk"])
    if any("generation" not in item["fields"] for item in checkpoints):
        parents = {}
        for item in objects:
            if item["model"] == "versions.lineageedge":
                parents.setdefault(item["fields"]["child"], []).append(item["fields"]["parent"])
        generations = {}
        for item in checkpoints:
            generations[item["pk"]] = 1 + max((generations.get(parent, 0) for parent in parents.get(item["pk"], ())), default=-1)
            item["fields"].setdefault("generation", generations[item["pk"]])


def _check_no_collisions(objects):
    by_model = {}
    for item in objects:
        by_model.setdefault(item["model"], []).append(item["pk"])
    for label, pks in by_model.items():
        model = apps.get_model(label)
        taken = list(model.objects.filter(pk__in=pks).values_list("pk", flat=True)[:5])
        if taken:
            raise Conflict(f"This installation already has {label} rows with ids {taken}; restore into an empty installation.")


def _restore_users(users):
    User = get_user_model()
    mapping = {}
    for entry in users:
        user = User.objects.filter(username=entry["username"]).first()
        if user is None:
            user = User(username=entry["username"], email=entry["email"], first_name=entry["first_name"],
                        last_name=entry["last_name"], is_active=entry["is_active"])
            user.set_unusable_password()
            user.save()
        mapping[entry["pk"]] = user.pk
    return mapping


def _remap_users(objects, user_map):
    for item in objects:
        model = apps.get_model(item["model"])
        for attname in _user_fields(model):
            field_name = model._meta.get_field(attname.removesuffix("_id")).name
            value = item["fields"].get(field_name)
            if value is not None:
                item["fields"][field_name] = user_map[value]
    return objects


def _reset_sequences(models):
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
