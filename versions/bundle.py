"""Backup and restore of one project as a self-contained bundle.

A bundle is a tar.gz holding ``manifest.json``, ``objects.json`` (every row of the project in
Django's JSON serialization: versions, labels and their history, lineage, datasets, suites, runs,
evaluations, audit events), ``users.json`` (the people those rows name; no password hashes,
restored users sign in after ``manage.py changepassword``) and ``blobs/<sha256>`` (every byte
the project references). Restoring keeps primary keys, so every hash and every history is
identical; users are matched by username. A restore only ever creates the bundle's project
(``project_import`` says what it refuses), so a bundle is data, never a way to grant access.
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
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from versions import blob_store
from core.errors import Conflict, ValidationFailed
from versions.project_scope import project_rows, project_scopes
from core.safe_json import json_loads
from versions.sql import sequences_reset

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


def _user_fields(model):
    User = get_user_model()
    return [f.attname for f in model._meta.concrete_fields if f.is_relation and f.related_model is User]


def _blob_fields(model):
    from versions.models import Blob

    return [f.attname for f in model._meta.concrete_fields if f.is_relation and f.related_model is Blob]


def project_export(*, project, path, actor=None):
    """Write the project's bundle to ``path``; returns the manifest. The bundle holds every
    response and forget-set row (hazardous text), so the export is a ``project.export`` audit
    event of the project (written after the rows were read: the bundle does not hold it)."""
    objects, user_ids, blob_ids, counts = [], set(), set(), {}
    for scope in project_scopes():
        model = apps.get_model(scope.label)
        rows = list(project_rows(scope, project))
        counts[scope.label] = len(rows)
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
            with blob_store.blob_open(blob) as reader:
                archive.addfile(info, reader)
    from versions.services import audit_record

    audit_record(
        project=project,
        actor=actor,
        action="project.export",
        object_type="project",
        object_id=project.pk,
        data={"rows": len(objects), "blobs": len(blobs), "bundle_sha256": blob_store.sha256_of_path(Path(path))[0]},
    )
    return manifest


def _safe_extract(archive, directory):
    for member in archive.getmembers():
        name = member.name
        if not (member.isfile() or member.isdir()) or name.startswith("/") or ".." in Path(name).parts:
            raise ValidationFailed(f"Bundle member {name!r} is not a plain relative file; refusing the bundle.")
    archive.extractall(directory, filter="data")


def project_import(*, path, actor=None, memberships=False, admin=None):
    """Restore a bundle as a new project of this installation; returns the manifest.

    A bundle can only create its own project: its slug and every primary key must be free here,
    and every row must be of a model of the project scope (versions.project_scope) whose relations stay inside the bundle
    (its one project, rows of the bundle, the people of ``users.json``, the bundle's blobs). One
    row outside, and the whole bundle is refused before anything is written: a crafted bundle
    cannot make anyone a member of an existing project, plant an API token (tokens belong to
    users, not projects, and never travel in a bundle) or touch another project's rows.

    Memberships are restored only when ``memberships`` is true (the bundle's roles, given to
    the local users of the same usernames); ``admin`` (a local user) becomes an admin of the
    restored project either way. Runs that were queued or running when exported are restored as
    failed, so nothing executes on its own. The restore is one ``project.import`` audit event.
    """
    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as scratch:
        scratch = Path(scratch)
        try:
            with tarfile.open(path, "r:*") as archive:
                _safe_extract(archive, scratch)
        except tarfile.TarError as exc:
            raise ValidationFailed(f"Not a Lethe bundle: {exc}.") from exc
        try:
            manifest = json_loads((scratch / "manifest.json").read_text(encoding="utf-8"))
            objects = json_loads((scratch / "objects.json").read_text(encoding="utf-8"))
            users = json_loads((scratch / "users.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValidationFailed(f"Not a Lethe bundle (missing or unreadable manifest/objects/users): {exc}.") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            format_, version = (manifest.get("format"), manifest.get("version")) if isinstance(manifest, dict) else (None, None)
            raise ValidationFailed(f"Unsupported bundle format {format_!r} version {version!r}.")
        from versions.models import Project

        if Project.objects.filter(slug=manifest.get("project")).exists():
            raise Conflict(f"Project {manifest['project']!r} already exists here; a bundle only restores a project that does not exist yet. Nothing was written.")
        _fields_moved_since(objects)
        objects, skipped_memberships = _in_project_scope(manifest=manifest, objects=objects, users=users, memberships=memberships)
        admin_user = None
        if admin is not None:
            admin_user = get_user_model().objects.filter(username=admin).first()
            if admin_user is None:
                raise ValidationFailed(f"No user named {admin!r} here to make admin of the restored project. Nothing was written.")
        _check_no_collisions(objects)
        _fill_fields_added_since(objects)
        _rows_restored(objects)
        for sha256, size in manifest["blobs"].items():
            blob_path = scratch / "blobs" / sha256
            digest, actual = blob_store.sha256_of_path(blob_path)
            if digest != sha256 or actual != size:
                raise ValidationFailed(f"Bundle blob {sha256} is damaged (hash {digest}); nothing was restored.")
        with transaction.atomic():
            user_map = _restore_users(users)
            for sha256 in manifest["blobs"]:
                blob_store.blob_put_path(scratch / "blobs" / sha256)
            restored = []
            with connection.constraint_checks_disabled():
                try:
                    for item in serializers.deserialize("json", json.dumps(_remap_users(objects, user_map))):
                        item.save()
                        restored.append(type(item.object))
                except serializers.base.DeserializationError as exc:
                    raise ValidationFailed(f"Refusing the bundle: a row does not fit this installation ({exc}); nothing was written.") from None
            connection.check_constraints(table_names=sorted({m._meta.db_table for m in restored}))
            sequences_reset(set(restored))
            project = Project.objects.get(slug=manifest["project"])
            _restored_audit(
                project=project, actor=actor, admin=admin_user, manifest=manifest, objects=objects, memberships=memberships, skipped_memberships=skipped_memberships, path=path
            )
        manifest.update(restored_rows=len(objects), skipped_memberships=skipped_memberships)
        return manifest


def _restored_audit(*, project, actor, admin, manifest, objects, memberships, skipped_memberships, path):
    from versions.models import Membership, Role
    from versions.permissions import forget_cached_roles
    from versions.services import audit_record

    if admin is not None:
        Membership.objects.update_or_create(project=project, user=admin, defaults={"role": Role.ADMIN})
        forget_cached_roles(admin)
    digest, _ = blob_store.sha256_of_path(Path(path))
    audit_record(
        project=project,
        actor=actor,
        action="project.import",
        object_type="project",
        object_id=project.pk,
        data={
            "bundle_sha256": digest,
            "exported_at": str(manifest.get("exported_at"))[:64],
            "rows": len(objects),
            "blobs": len(manifest["blobs"]),
            "memberships": "restored" if memberships else f"not restored ({skipped_memberships} in the bundle)",
            "admin": admin.username if admin is not None else None,
        },
    )


def _relation_fields(model):
    return [f for f in model._meta.concrete_fields if f.is_relation] + list(model._meta.many_to_many)


def _in_project_scope(*, manifest, objects, users, memberships):
    """The bundle's rows to restore (memberships left out unless asked for) and how many
    memberships were left out; ValidationFailed naming the first row outside the project."""
    from versions.models import Blob

    def refuse(reason):
        raise ValidationFailed(f"Refusing the bundle: {reason}. A bundle restores one project's own rows only; nothing was written.")

    if not isinstance(objects, list) or not isinstance(users, list) or not isinstance(manifest.get("blobs"), dict):
        refuse("objects.json and users.json must be lists, and the manifest must list the blobs")
    user_pks = set()
    for entry in users:
        if not (isinstance(entry, dict) and isinstance(entry.get("pk"), int) and isinstance(entry.get("username"), str) and 0 < len(entry["username"]) <= 150):
            refuse(f"users.json holds an entry that is not a user ({str(entry)[:100]})")
        user_pks.add(entry["pk"])
    scoped = {scope.label.lower(): scope.lookup for scope in project_scopes()}
    User = get_user_model()
    pks = {}
    for item in objects:
        if not (isinstance(item, dict) and isinstance(item.get("model"), str) and isinstance(item.get("pk"), int) and isinstance(item.get("fields"), dict)):
            refuse(f"objects.json holds an entry that is not a row ({str(item)[:100]})")
        if item["model"].lower() not in scoped:
            refuse(f"it holds a {item['model']} row (id {item['pk']}), which is not part of a project")
        pks.setdefault(item["model"].lower(), set()).add(item["pk"])
    projects = pks.get("versions.project", set())
    if len(projects) != 1:
        refuse(f"it must hold exactly one project, and holds {len(projects)}")
    (project_pk,) = projects
    project_row = next(item for item in objects if item["model"].lower() == "versions.project")
    if project_row["fields"].get("slug") != manifest.get("project"):
        refuse(f"its project row is {project_row['fields'].get('slug')!r}, its manifest says {manifest.get('project')!r}")
    kept, skipped = [], 0
    for item in objects:
        label = item["model"].lower()
        model = apps.get_model(label)
        if scoped[label] == "project" and item["fields"].get("project") != project_pk:
            refuse(f"{item['model']} {item['pk']} belongs to project {item['fields'].get('project')!r}, not the bundle's ({project_pk})")
        if label == "versions.tag" and item["fields"].get("checkpoint") is None and item["fields"].get("prompt_version") is None:
            refuse(f"tag {item['pk']} is on neither a checkpoint nor a prompt version")
        for field in _relation_fields(model):
            # A row keyed by another (evals.PromotionEvidence by its label event) names it as its pk.
            values = item["pk"] if field.primary_key else item["fields"].get(field.name)
            if values is None and not field.null and not field.many_to_many:
                refuse(f"{item['model']} {item['pk']} has no {field.name}")
            for value in values if field.many_to_many and isinstance(values, list) else [values]:
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    refuse(f"{item['model']} {item['pk']} names {field.name} by {str(value)[:50]}, not by an id")
                target = field.related_model
                if target is User:
                    inside = value in user_pks
                elif target is Blob:
                    inside = value in manifest["blobs"]
                else:
                    inside = value in pks.get(target._meta.label_lower, ())
                if not inside:
                    refuse(f"{item['model']} {item['pk']} points at {target._meta.label} {value!r} ({field.name}), which is not in the bundle")
        if label == "versions.membership" and not memberships:
            skipped += 1
            continue
        kept.append(item)
    return kept, skipped


def _rows_restored(objects):
    """Each row as its app restores it (versions.project_scope's ``restored``): runs and sweeps
    exported while executing come back stopped, so a restore never starts work."""
    restored = {scope.label.lower(): scope.restored for scope in project_scopes() if scope.restored}
    now = timezone.now().isoformat()
    for item in objects:
        if item["model"].lower() in restored:
            restored[item["model"].lower()](item["fields"], now)


def _fields_moved_since(objects):
    """Bundles written by an earlier release keep the evaluation a label move cited on the label
    event (``evaluation``); it now lives in evals.PromotionEvidence, keyed by the event, as
    evals migration 0010 moved it. They also credit a checkpoint to the run that produced it on
    the checkpoint (``created_by_run``); that is now the unlearning run's ``produced_checkpoint``,
    as unlearning migration 0002 moved it (a run with no unlearning row in the bundle is kept in
    the checkpoint's metadata, as the migration does)."""
    if not isinstance(objects, list):
        return
    rows = [item for item in objects if isinstance(item, dict) and isinstance(item.get("fields"), dict)]
    unlearning_by_run = {item["fields"].get("run"): item for item in rows if item.get("model") == "unlearning.unlearningrun"}
    for item in rows:
        if item.get("model") == "versions.labelevent":
            evaluation = item["fields"].pop("evaluation", None)
            if evaluation is not None:
                objects.append({"model": "evals.promotionevidence", "pk": item.get("pk"), "fields": {"evaluation": evaluation}})
        elif item.get("model") == "versions.checkpoint":
            run = item["fields"].pop("created_by_run", None)
            if run is None:
                continue
            if run in unlearning_by_run:
                unlearning_by_run[run]["fields"]["produced_checkpoint"] = item.get("pk")
            elif isinstance(item["fields"].get("metadata", {}), dict):
                item["fields"]["metadata"] = {**item["fields"].get("metadata", {}), "created_by_run": run}


def _fill_fields_added_since(objects):
    """Bundles written by an earlier release lack fields added since; derive them as the
    migrations that added them did: case result positions 1..n per evaluation in id order, and
    checkpoint generations from the bundle's lineage edges (parents come before children in id order)."""
    results = sorted((item for item in objects if item["model"] == "evals.caseresult" and "position" not in item["fields"]), key=lambda item: item["pk"])
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
            raise Conflict(
                f"This installation already has {label} rows with ids {taken}; a bundle keeps its ids, so it restores "
                "where they are free (a new installation, or the one it came from once the project is deleted). "
                "Nothing was written."
            )


def _restore_users(users):
    User = get_user_model()
    mapping = {}
    for entry in users:
        user = User.objects.filter(username=entry["username"]).first()
        if user is None:
            # The person's name and address only: never a password, a staff or a superuser flag.
            user = User(
                username=entry["username"],
                email=str(entry.get("email", ""))[:254],
                first_name=str(entry.get("first_name", ""))[:150],
                last_name=str(entry.get("last_name", ""))[:150],
                is_active=entry.get("is_active") is not False,
            )
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
