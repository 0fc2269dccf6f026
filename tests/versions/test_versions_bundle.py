"""Backup and restore: export a project, wipe the installation, import: identical hashes and history."""
import json
import shutil
import tarfile

import pytest
from django.core.management import call_command

from tests.versions.checkpoint_files import write_adapter, write_full
from versions import artifacts, bundle, selectors, services
from versions.errors import Conflict
from versions.models import Blob, Project

pytestmark = pytest.mark.django_db(transaction=True)


def _populate(project, user, tmp_path):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    v1 = services.prompt_version_commit(prompt=prompt, template="Be {{ tone }}.", actor=user, message="first")
    v2 = services.prompt_version_commit(prompt=prompt, template="Be {{ tone }} and safe.", actor=user)
    services.label_move(name="production", actor=user, prompt_version=v2)
    services.label_move(name="production", actor=user, prompt_version=v1, reason="rollback")
    model = services.model_create(project=project, name="tiny", actor=user)
    base = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    child = services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "adapter"), actor=user,
                                                   parents=[(base, "unlearned-from")], lineage_method="yao")
    services.label_move(name="production", actor=user, checkpoint=base)
    services.label_move(name="production", actor=user, checkpoint=child, reason="safer")
    services.tag_add(name="asr<5%", checkpoint=child, actor=user)
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    services.dataset_version_create(dataset=dataset, rows=[{"prompt": "p", "response": "r"}], actor=user)


def _normalised_export(project, path):
    bundle.project_export(project=project, path=path)
    with tarfile.open(path) as archive:
        objects = json.load(archive.extractfile("objects.json"))
        users = {u["pk"]: u["username"] for u in json.load(archive.extractfile("users.json"))}
        manifest = json.load(archive.extractfile("manifest.json"))
    for item in objects:
        for key in ("author", "actor", "created_by", "user"):
            if item["fields"].get(key) is not None:
                item["fields"][key] = users[item["fields"][key]]
    return objects, manifest


def test_export_wipe_import_restores_identical_hashes_and_history(project, user, tmp_path, _artifact_root):
    _populate(project, user, tmp_path)
    before, manifest = _normalised_export(project, tmp_path / "backup.tar.gz")

    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(_artifact_root)
    assert Project.objects.count() == 0 and Blob.objects.count() == 0

    bundle.project_import(path=tmp_path / "backup.tar.gz")

    restored = Project.objects.get(slug="safety")
    after, manifest_after = _normalised_export(restored, tmp_path / "again.tar.gz")
    assert after == before
    assert manifest_after["blobs"] == manifest["blobs"] and len(manifest["blobs"]) == 6
    for blob in Blob.objects.all():
        artifacts.blob_read_bytes(blob)  # verified against its hash
    assert selectors.label_resolve(project=restored, ref="tiny@production").number == 2
    assert selectors.label_resolve(project=restored, ref="system@production").number == 1
    # New rows after a restore get fresh ids (sequences were moved past the restored ones).
    new_version = services.prompt_version_commit(prompt=restored.prompts.get(), template="v3", actor=restored.memberships.get().user)
    assert new_version.number == 3


def test_import_refuses_a_project_that_exists(project, user, tmp_path):
    _populate(project, user, tmp_path)
    bundle.project_export(project=project, path=tmp_path / "b.tar.gz")
    with pytest.raises(Conflict, match="already exists here"):
        bundle.project_import(path=tmp_path / "b.tar.gz")
