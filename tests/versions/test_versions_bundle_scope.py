"""A bundle restores its own project and nothing else: a crafted bundle cannot make anyone a
member of an existing project, plant an API token, or reach rows or blobs outside it; refused
bundles write nothing. Memberships come back only when asked for."""

import io
import json
import tarfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from jobs.models import Run, RunStatus
from tests.versions.checkpoint_files import write_full
from versions import bundle, services
from versions.authentication import token_sha256
from core.errors import Conflict, ValidationFailed
from versions.models import ApiToken, AuditEvent, Blob, Membership, Project, Role

pytestmark = pytest.mark.django_db(transaction=True)

PLANTED_KEY = "lethe_planted-by-a-crafted-bundle"


@pytest.fixture
def victim(make_user):
    """An existing project the attacker is no member of, and its admin."""
    owner = make_user("victoria")
    return services.project_create(slug="victim", name="Victim", creator=owner)


@pytest.fixture
def exported(project, user, make_user, tmp_path):
    """A bundle of project "safety" (alice admin, bob viewer, a checkpoint, a dataset), whose
    project is then deleted here, so its slug and ids are free to restore."""
    bob = make_user("bob", role=Role.VIEWER, project=project)
    model = services.model_create(project=project, name="tiny", actor=user)
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=user)
    services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=[{"prompt": "p", "response": "r"}], actor=user)
    path = tmp_path / "safety.tar.gz"
    bundle.project_export(project=project, path=path)
    services.project_delete(project=project, actor=user)
    return {"path": path, "bob": bob}


def rewritten(path, target, change):
    """A copy of the bundle at ``path`` whose objects and users ``change(objects, users)`` edits."""
    with tarfile.open(path) as source:
        members = [(member, source.extractfile(member).read() if member.isfile() else None) for member in source.getmembers()]
    payload = {member.name: json.loads(data) for member, data in members if member.name in ("objects.json", "users.json")}
    change(payload["objects.json"], payload["users.json"])
    with tarfile.open(target, "w:gz") as archive:
        for member, data in members:
            if member.name in payload:
                data = json.dumps(payload[member.name]).encode()
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def state():
    """What a refused import must leave exactly as it was."""
    return {
        "projects": sorted(Project.objects.values_list("slug", flat=True)),
        "memberships": sorted(Membership.objects.values_list("project__slug", "user__username", "role")),
        "tokens": ApiToken.objects.count(),
        "users": sorted(get_user_model().objects.values_list("username", flat=True)),
        "blobs": Blob.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_the_attackers_bundle_admin_of_an_existing_project_and_a_planted_token_is_refused_whole(exported, victim, tmp_path):
    # given the bundle an attacker crafted: its own project, plus a membership making "mallory"
    # admin of the existing project "victim" and an API token for bob, whose key they know
    def plant(objects, users):
        users.append({"pk": 990, "username": "mallory", "email": "", "first_name": "", "last_name": "", "is_active": True})
        bob = next(entry["pk"] for entry in users if entry["username"] == "bob")
        objects.append({"model": "versions.membership", "pk": 990, "fields": {"project": victim.pk, "user": 990, "role": 40, "created_at": "2026-01-01T00:00:00+00:00"}})
        objects.append(
            {
                "model": "versions.apitoken",
                "pk": 990,
                "fields": {
                    "user": bob,
                    "name": "planted",
                    "prefix": PLANTED_KEY[:12],
                    "key_sha256": token_sha256(PLANTED_KEY),
                    "created_at": "2026-01-01T00:00:00+00:00",
                    "last_used_at": None,
                    "revoked_at": None,
                },
            }
        )

    crafted = rewritten(exported["path"], tmp_path / "crafted.tar.gz", plant)
    before = state()

    # when it is imported (with memberships asked for, as a careless operator might)
    with pytest.raises(ValidationFailed) as refused:
        bundle.project_import(path=crafted, memberships=True)

    # then nothing at all was written, and the planted key opens nothing
    assert str(refused.value) == (
        "Refusing the bundle: it holds a versions.apitoken row (id 990), which is not part of a project. A bundle restores one project's own rows only; nothing was written."
    )
    assert state() == before
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {PLANTED_KEY}")
    assert client.get("/api/v1/projects/").status_code == 401


def test_a_membership_in_another_project_is_refused(exported, victim, tmp_path):
    def plant(objects, users):
        alice = next(entry["pk"] for entry in users if entry["username"] == "alice")
        objects.append({"model": "versions.membership", "pk": 991, "fields": {"project": victim.pk, "user": alice, "role": 40, "created_at": "2026-01-01T00:00:00+00:00"}})

    crafted = rewritten(exported["path"], tmp_path / "crafted.tar.gz", plant)
    before = state()

    with pytest.raises(ValidationFailed, match=rf"^Refusing the bundle: versions.membership 991 belongs to project {victim.pk}, not the bundle's "):
        bundle.project_import(path=crafted, memberships=True)

    assert state() == before
    assert not Membership.objects.filter(project=victim, user__username="alice").exists()


def test_a_row_pointing_outside_the_bundle_is_refused(exported, tmp_path):
    # given a checkpoint file moved onto a checkpoint the bundle does not hold
    def repoint(objects, users):
        checkpoint_file = next(item for item in objects if item["model"] == "versions.checkpointfile")
        checkpoint_file["fields"]["checkpoint"] = 4242

    crafted = rewritten(exported["path"], tmp_path / "crafted.tar.gz", repoint)
    before = state()

    with pytest.raises(ValidationFailed, match=r"points at versions.Checkpoint 4242 \(checkpoint\), which is not in the bundle"):
        bundle.project_import(path=crafted)

    assert state() == before


def test_a_blob_of_the_installation_not_in_the_bundle_cannot_be_named(exported, victim, tmp_path):
    # given a dataset version whose blob is a sha256 this installation holds for another project
    other = services.dataset_version_create(
        dataset=services.dataset_create(project=victim, name="secret", actor=victim.memberships.get().user),
        rows=[{"prompt": "another project's", "response": "data"}],
        actor=victim.memberships.get().user,
    )

    def repoint(objects, users):
        version = next(item for item in objects if item["model"] == "versions.datasetversion")
        version["fields"]["blob"] = other.blob_id

    crafted = rewritten(exported["path"], tmp_path / "crafted.tar.gz", repoint)
    before = state()

    with pytest.raises(ValidationFailed, match=rf"points at versions.Blob '{other.blob_id}' \(blob\), which is not in the bundle"):
        bundle.project_import(path=crafted)

    assert state() == before


def test_a_second_project_in_the_bundle_is_refused(exported, tmp_path):
    def add_project(objects, users):
        objects.append(
            {
                "model": "versions.project",
                "pk": 993,
                "fields": {
                    "slug": "second",
                    "name": "Second",
                    "description": "",
                    "protected_label_role": 30,
                    "protected_labels": [],
                    "require_evaluation_for_promotion": False,
                    "milestone_thresholds": {},
                    "is_demo": False,
                    "created_at": "2026-01-01T00:00:00+00:00",
                },
            }
        )

    crafted = rewritten(exported["path"], tmp_path / "crafted.tar.gz", add_project)

    with pytest.raises(ValidationFailed, match="^Refusing the bundle: it must hold exactly one project, and holds 2. "):
        bundle.project_import(path=crafted)

    assert not Project.objects.filter(slug__in=["safety", "second"]).exists()


def test_an_existing_slug_is_refused_with_nothing_written(exported, make_user, tmp_path):
    services.project_create(slug="safety", name="Someone else's safety", creator=make_user("carol"))
    before = state()

    with pytest.raises(Conflict) as refused:
        bundle.project_import(path=exported["path"], memberships=True)

    assert str(refused.value) == ("Project 'safety' already exists here; a bundle only restores a project that does not exist yet. Nothing was written.")
    assert state() == before


def test_memberships_come_back_only_when_asked_for_and_the_restore_is_audited(exported, make_user):
    # given an operator of this installation
    operator = make_user("olivia")

    # when the bundle is restored without memberships, naming the operator as admin
    manifest = bundle.project_import(path=exported["path"], actor=operator, admin="olivia")

    # then only the operator is a member, and one audit event says what came back
    restored = Project.objects.get(slug="safety")
    assert list(restored.memberships.values_list("user__username", "role")) == [("olivia", Role.ADMIN)]
    event = AuditEvent.objects.get(project=restored, action="project.import")
    assert (event.actor, event.data["memberships"], event.data["admin"], event.data["rows"]) == (operator, "not restored (2 in the bundle)", "olivia", manifest["restored_rows"])
    assert len(event.data["bundle_sha256"]) == 64
    assert manifest["skipped_memberships"] == 2


def test_memberships_are_restored_when_asked_for(exported):
    bundle.project_import(path=exported["path"], memberships=True)

    restored = Project.objects.get(slug="safety")
    assert sorted(restored.memberships.values_list("user__username", "role")) == [("alice", Role.ADMIN), ("bob", Role.VIEWER)]
    assert AuditEvent.objects.get(project=restored, action="project.import").data["memberships"] == "restored"


def test_a_run_exported_while_queued_comes_back_failed(project, user, tmp_path):
    from jobs.services import run_create

    run = run_create(project=project, kind="evaluation", created_by=user)
    bundle.project_export(project=project, path=tmp_path / "b.tar.gz")
    services.project_delete(project=project, actor=user)

    bundle.project_import(path=tmp_path / "b.tar.gz", admin="alice")

    restored = Run.objects.get(pk=run.pk)
    assert (restored.status, restored.error) == (RunStatus.FAILED, "restored from a bundle while queued; retry it to run it")


def test_import_project_command_refuses_with_the_message_and_says_what_it_restored(exported, victim, tmp_path, capsys):
    crafted = rewritten(
        exported["path"],
        tmp_path / "crafted.tar.gz",
        lambda objects, users: objects.append({"model": "auth.user", "pk": 995, "fields": {"username": "root", "is_superuser": True}}),
    )

    with pytest.raises(CommandError, match=r"^Refusing the bundle: it holds a auth.user row \(id 995\), which is not part of a project"):
        call_command("import_project", str(crafted), "--memberships")
    assert not get_user_model().objects.filter(username="root").exists()

    call_command("import_project", str(exported["path"]), "--admin", "victoria")

    out = capsys.readouterr().out
    assert "2 membership(s) in the bundle not restored (pass --memberships to restore them)." in out
    assert list(Project.objects.get(slug="safety").memberships.values_list("user__username", flat=True)) == ["victoria"]


def test_an_export_is_an_audit_event_that_the_bundle_does_not_hold(project, user, tmp_path):
    manifest = bundle.project_export(project=project, path=tmp_path / "b.tar.gz", actor=user)

    event = AuditEvent.objects.get(project=project, action="project.export")
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        exported = json.load(archive.extractfile("objects.json"))
    assert (event.actor, event.data["rows"], event.data["blobs"]) == (user, sum(manifest["counts"].values()), 0)
    assert [item["fields"]["action"] for item in exported if item["model"] == "versions.auditevent"] == ["project.create"]


def test_malformed_rows_are_refused_with_a_message_not_a_crash(exported, tmp_path):
    def unknown_field(objects, users):
        next(item for item in objects if item["model"] == "versions.model")["fields"]["is_superuser"] = True

    def list_as_id(objects, users):
        next(item for item in objects if item["model"] == "versions.checkpoint")["fields"]["model"] = [1, 2]

    before = state()
    with pytest.raises(ValidationFailed, match=r"^Refusing the bundle: a row does not fit this installation \(.*is_superuser"):
        bundle.project_import(path=rewritten(exported["path"], tmp_path / "unknown.tar.gz", unknown_field))
    with pytest.raises(ValidationFailed, match=r"names model by \[1, 2\], not by an id"):
        bundle.project_import(path=rewritten(exported["path"], tmp_path / "list.tar.gz", list_as_id))

    assert state() == before  # blob rows included: they rolled back with the rest
