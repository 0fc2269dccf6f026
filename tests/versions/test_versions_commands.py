"""Management commands for scripts and CI: users, projects, tokens, prompt commits, checkpoint
registration and label moves, each through the services, each failing with the service's message."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from tests.versions.checkpoint_files import pickled_bytes, write_full
from versions.models import ApiToken, Blob, Checkpoint, LabelEvent, Membership, Project, PromptVersion, Role

pytestmark = pytest.mark.django_db


def run(*args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **({"stdin": stdin} if stdin else {}))
    return out.getvalue().strip()


@pytest.fixture
def admin(db):
    run("lethe_user", "create", "ada")
    run("lethe_project", "create", "safety", "--name", "Safety", "--user", "ada")
    return Project.objects.get(slug="safety")


def test_user_project_and_member(admin, monkeypatch):
    monkeypatch.setenv("NEW_PASSWORD", "a-long-password")

    created = run("lethe_user", "create", "bob", "--password-env", "NEW_PASSWORD")
    added = run("lethe_project", "add-member", "safety", "bob", "--role", "editor", "--user", "ada")

    assert created == "created user bob"
    assert added == "bob is editor in safety"
    assert Membership.objects.get(user__username="bob").role == Role.EDITOR
    assert Membership.objects.get(user__username="ada").role == Role.ADMIN
    from django.contrib.auth import authenticate

    assert authenticate(username="bob", password="a-long-password") is not None


def test_errors_carry_the_service_message(admin):
    with pytest.raises(CommandError, match="User 'ada' already exists."):
        run("lethe_user", "create", "ada")
    with pytest.raises(CommandError, match="A project with slug 'safety' already exists."):
        run("lethe_project", "create", "safety", "--user", "ada")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("lethe_project", "add-member", "safety", "ghost", "--role", "viewer", "--user", "ada")
    with pytest.raises(CommandError, match="Project 'nope' not found."):
        run("commit_prompt", "nope", "system", "--template", "x", "--user", "ada")


def test_token_create_prints_the_key_which_authenticates_then_revoke(admin):
    key = run("lethe_token", "create", "ada", "--name", "ci")
    token = ApiToken.objects.get()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    assert client.get("/api/v1/projects/safety/").status_code == 200
    assert run("lethe_token", "list", "ada") == f"{token.pk}\t{token.prefix}…\tci\tactive"
    assert run("lethe_token", "revoke", str(token.pk)) == f"revoked token {token.pk} (ci) of ada"
    assert client.get("/api/v1/projects/safety/").status_code == 401


def test_commit_prompt_from_text_file_and_stdin(admin, tmp_path):
    (tmp_path / "t.txt").write_text("You are {{ role }}.")

    first = run("commit_prompt", "safety", "system", "--template", "Be safe.", "--create", "--user", "ada", "--message", "init")
    second = run("commit_prompt", "safety", "system", "--template-file", str(tmp_path / "t.txt"), "--params", '{"temperature": 0}', "--user", "ada")
    third = run("commit_prompt", "safety", "system", "--template-file", "-", "--user", "ada", stdin=io.StringIO("From stdin."))

    versions = {v.number: v for v in PromptVersion.objects.all()}
    assert [first, second, third] == [f"system@v{n} {versions[n].sha256}" for n in (1, 2, 3)]
    assert (versions[2].model_params, versions[3].template) == ({"temperature": 0}, "From stdin.")
    with pytest.raises(CommandError, match="identical to the head, version 3"):
        run("commit_prompt", "safety", "system", "--template", "From stdin.", "--user", "ada")
    with pytest.raises(CommandError, match="Prompt 'other' not found in safety."):
        run("commit_prompt", "safety", "other", "--template", "x", "--user", "ada")


def test_register_checkpoint_from_a_directory_and_as_a_reference(admin, tmp_path):
    reference = run("register_checkpoint", "safety", "llama", "--ref", "org/llama", "--revision", "abc", "--create-model", "--user", "ada")
    stored = run(
        "register_checkpoint",
        "safety",
        "llama",
        "--dir",
        str(write_full(tmp_path / "full")),
        "--parent",
        "1",
        "--relation",
        "fine-tuned-from",
        "--metadata",
        '{"seed": 1}',
        "--user",
        "ada",
    )

    first, second = Checkpoint.objects.order_by("number")
    assert reference == f"llama@1 reference {first.sha256}"
    assert stored == f"llama@2 full {second.sha256}"
    assert (first.external_ref, first.external_revision, second.metadata) == ("org/llama", "abc", {"seed": 1})
    assert list(second.parent_edges.values_list("parent__number", "relation")) == [(1, "fine-tuned-from")]


def test_register_checkpoint_refuses_pickles_and_stores_nothing(admin, tmp_path):
    folder = write_full(tmp_path / "full", extra={"weights.bin": pickled_bytes()})

    with pytest.raises(CommandError, match=r"weights.bin: pickled weights \(.bin\) are refused"):
        run("register_checkpoint", "safety", "llama", "--dir", str(folder), "--create-model", "--user", "ada")
    assert (Blob.objects.count(), Checkpoint.objects.count()) == (0, 0)


def test_move_label_promotes_rolls_back_and_respects_roles(admin):
    run("register_checkpoint", "safety", "m", "--ref", "org/a", "--create-model", "--user", "ada")
    run("register_checkpoint", "safety", "m", "--ref", "org/b", "--user", "ada")
    run("lethe_user", "create", "ed")
    run("lethe_project", "add-member", "safety", "ed", "--role", "editor", "--user", "ada")

    created = run("move_label", "safety", "m@production", "1", "--kind", "model", "--user", "ada")
    promoted = run("move_label", "safety", "m@production", "2", "--kind", "model", "--reason", "safer", "--user", "ada")
    rolled_back = run("move_label", "safety", "m@production", "1", "--kind", "model", "--user", "ada")

    # each prints its preview, then what it did
    assert [created, promoted, rolled_back] == [
        "production: (unset) -> #1 (creation)\nm@production: create - -> 1",
        "production: #1 -> #2 (promotion)\n  no finished evaluation between #1 and #2\nm@production: promote 1 -> 2",
        "production: #2 -> #1 (rollback)\n  no finished evaluation between #2 and #1\nm@production: rollback 2 -> 1",
    ]
    with pytest.raises(CommandError, match="Moving 'production' needs the reviewer role; you are editor."):
        run("move_label", "safety", "m@production", "2", "--kind", "model", "--user", "ed")
    with pytest.raises(CommandError, match="Expected name@label"):
        run("move_label", "safety", "production", "2", "--kind", "model", "--user", "ada")
    assert LabelEvent.objects.count() == 3
