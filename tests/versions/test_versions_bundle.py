"""Backup and restore: export a project, wipe the installation, import: identical hashes and history."""

import io
import json
import shutil
import tarfile
from datetime import timedelta

import pytest
from django.core.management import call_command

from evals import services as eval_services
from evals.models import CaseResult, Evaluation
from jobs.executors import inprocess_executor_shutdown
from jobs.models import RunStatus
from jobs.services import run_create, run_execute, run_wait
from tests.versions.checkpoint_files import write_adapter, write_full
from mlcore.tiny import load_bundled_corpus
from unlearning.models import UnlearningRun
from unlearning.services import unlearning_run_create
from versions import blob_store, bundle, selectors, services
from core.errors import Conflict
from versions.models import AuditEvent, Blob, Checkpoint, LineageEdge, Project, PromptVersion

pytestmark = pytest.mark.django_db(transaction=True)


def _populate(project, user, tmp_path):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    v1 = services.prompt_version_commit(prompt=prompt, template="Be {{ tone }}.", actor=user, message="first")
    v2 = services.prompt_version_commit(prompt=prompt, template="Be {{ tone }} and safe.", actor=user)
    services.label_move(name="production", actor=user, prompt_version=v2)
    services.label_move(name="production", actor=user, prompt_version=v1, reason="rollback")
    model = services.model_create(project=project, name="tiny", actor=user)
    base = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    child = services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "adapter"), actor=user, parents=[(base, "unlearned-from")], lineage_method="yao")
    services.label_move(name="production", actor=user, checkpoint=base)
    services.label_move(name="production", actor=user, checkpoint=child, reason="safer")
    services.tag_add(name="asr<5%", checkpoint=child, actor=user)
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    services.dataset_version_create(dataset=dataset, rows=[{"prompt": "p", "response": "r"}], actor=user)
    # a judge calibration, with the rows it disagrees on
    from tests.web.builders import calibration_finished, judgement_set_ready

    calibration_finished(project=project, actor=user, version=judgement_set_ready(project=project, actor=user))


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


def _without_the_import_event(objects, before):
    """The restored rows without the one ``project.import`` audit event the restore added (which
    names how many rows it restored)."""
    imports = [item for item in objects if item["model"] == "versions.auditevent" and item["fields"]["action"] == "project.import"]
    assert [event["fields"]["data"]["rows"] for event in imports] == [len(before)]
    return [item for item in objects if item not in imports]


def test_export_wipe_import_restores_identical_hashes_and_history(project, user, tmp_path, _artifact_root):
    _populate(project, user, tmp_path)
    before, manifest = _normalised_export(project, tmp_path / "backup.tar.gz")

    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(_artifact_root)
    assert Project.objects.count() == 0 and Blob.objects.count() == 0

    bundle.project_import(path=tmp_path / "backup.tar.gz", memberships=True)

    restored = Project.objects.get(slug="safety")
    after, manifest_after = _normalised_export(restored, tmp_path / "again.tar.gz")
    assert _without_the_import_event(after, before) == before
    assert manifest_after["blobs"] == manifest["blobs"] and len(manifest["blobs"]) == 7
    assert (manifest["counts"]["evals.Calibration"], manifest["counts"]["evals.CalibrationItem"]) == (1, 3)
    for blob in Blob.objects.all():
        blob_store.blob_read_bytes(blob)  # verified against its hash
    assert selectors.label_resolve(project=restored, ref="tiny@production").number == 2
    assert selectors.label_resolve(project=restored, ref="system@production").number == 1
    # New rows after a restore get fresh ids (sequences were moved past the restored ones).
    new_version = services.prompt_version_commit(prompt=restored.prompts.get(), template="v3", actor=restored.memberships.get().user)
    assert new_version.number == 3


def test_restore_keeps_every_timestamp_to_the_microsecond(project, user, tmp_path, _artifact_root):
    """Times inside one millisecond (Django's JSON encoder keeps only milliseconds) come back as
    they were: a history whose events share a millisecond keeps its times and its order."""
    _populate(project, user, tmp_path)
    start = AuditEvent.objects.order_by("pk").first().created_at.replace(microsecond=0)
    for offset, event in enumerate(AuditEvent.objects.filter(project=project).order_by("pk")):
        AuditEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(microseconds=1 + 7 * offset))
    PromptVersion.objects.filter(prompt__project=project).update(created_at=start + timedelta(microseconds=999))
    before_events = list(AuditEvent.objects.filter(project=project).order_by("created_at").values_list("pk", "created_at"))
    before_versions = list(PromptVersion.objects.order_by("pk").values_list("pk", "created_at"))
    bundle.project_export(project=project, path=tmp_path / "backup.tar.gz")

    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(_artifact_root)
    bundle.project_import(path=tmp_path / "backup.tar.gz", memberships=True)

    restored_events = AuditEvent.objects.exclude(project=None).exclude(action="project.import")
    assert list(restored_events.order_by("created_at").values_list("pk", "created_at")) == before_events
    assert list(PromptVersion.objects.order_by("pk").values_list("pk", "created_at")) == before_versions
    assert before_events[1][1] - before_events[0][1] == timedelta(microseconds=7)


def test_import_refuses_a_project_that_exists(project, user, tmp_path):
    _populate(project, user, tmp_path)
    bundle.project_export(project=project, path=tmp_path / "b.tar.gz")
    with pytest.raises(Conflict, match="already exists here"):
        bundle.project_import(path=tmp_path / "b.tar.gz")


@pytest.fixture
def executed_project(settings, tmp_path, project, user, tiny_model_dir):
    """The project after a real unlearning run (in-process executor) and a real A/B evaluation of
    the parent against the child it produced."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    settings.LETHE_EXECUTOR = "inprocess"
    model = services.model_create(project=project, name="tiny", actor=user)
    parent = services.checkpoint_register_directory(model=model, directory=tiny_model_dir, actor=user, kind="full", message="base")
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    rows = [{"prompt": row["prompt"], "response": row["response"]} for row in load_bundled_corpus("harmful")[:4]]
    forget = services.dataset_version_create(dataset=dataset, rows=rows, actor=user)
    try:
        spec = unlearning_run_create(
            parent_checkpoint=parent,
            method="npo",
            forget_dataset_version=forget,
            actor=user,
            hyperparameters={"max_steps": 2, "batch_size": 2, "max_length": 64},
            branch_label="safety",
        )
        unlearning = run_wait(run=spec.run, timeout=120, poll_seconds=0.1)
    finally:
        inprocess_executor_shutdown(wait=True)
    assert (unlearning.status, unlearning.error) == (RunStatus.SUCCEEDED, "")
    spec.refresh_from_db()
    child = spec.produced_checkpoint
    suite = eval_services.suite_create(project=project, name="core", actor=user)
    cases = [
        {"key": "h0", "prompt": rows[0]["prompt"], "category": "harm", "expected": "refuse"},
        {"key": "b0", "prompt": "What is the capital of France?", "category": "benign", "expected": "comply"},
    ]
    suite_version = eval_services.suite_version_create(suite=suite, cases=cases, actor=user)
    evaluation = eval_services.evaluation_create(
        project=project,
        suite_version=suite_version,
        checkpoint_a=parent,
        checkpoint_b=child,
        actor=user,
        generation={"max_new_tokens": 8},
        statistics={"bootstrap_resamples": 100},
        enqueue=False,
    )
    assert run_execute(run_id=evaluation.run_id, worker="test").status == RunStatus.SUCCEEDED
    return {"parent": parent, "child": child, "unlearning": spec, "evaluation": Evaluation.objects.get(pk=evaluation.pk)}


def _api_row(checkpoint):
    return selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=checkpoint.model).filter(number=checkpoint.number))[0]


def test_bundle_with_a_real_unlearning_run_and_evaluation_round_trips(executed_project, tmp_path, _artifact_root):
    # given a project with a run-produced child checkpoint and an evaluation with case results
    project = Project.objects.get(slug="safety")
    child = executed_project["child"]
    responses = list(CaseResult.objects.order_by("pk").values_list("response_a", "response_b", "outcome_a", "outcome_b"))
    before, manifest = _normalised_export(project, tmp_path / "backup.tar.gz")

    # when it is exported, the installation wiped (rows and blobs) and the bundle imported
    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(_artifact_root)
    bundle.project_import(path=tmp_path / "backup.tar.gz", memberships=True)

    # then every row, hash and history is identical, and the child's bytes verify
    restored = Project.objects.get(slug="safety")
    after, manifest_after = _normalised_export(restored, tmp_path / "again.tar.gz")
    assert _without_the_import_event(after, before) == before
    assert manifest_after["blobs"] == manifest["blobs"]
    assert manifest["counts"]["unlearning.UnlearningRun"] == 1
    assert manifest["counts"]["evals.CaseResult"] == 2
    restored_child = Checkpoint.objects.get(pk=child.pk)
    assert restored_child.sha256 == child.sha256
    assert _api_row(restored_child)["created_by_run"] == executed_project["unlearning"].run_id
    assert UnlearningRun.objects.get().produced_checkpoint_id == child.pk
    assert list(LineageEdge.objects.filter(child=restored_child).values_list("parent_id", "relation")) == [(executed_project["parent"].pk, "unlearned-from")]
    assert selectors.label_resolve(project=restored, ref="tiny@safety").pk == child.pk
    assert list(CaseResult.objects.order_by("pk").values_list("response_a", "response_b", "outcome_a", "outcome_b")) == responses
    assert Evaluation.objects.get().verdict == executed_project["evaluation"].verdict
    for item in restored_child.files.select_related("blob"):
        assert len(blob_store.blob_read_bytes(item.blob)) == item.size  # verified against its hash


def test_bundle_from_before_positions_and_generations_restores_both(executed_project, tmp_path, _artifact_root):
    # given a bundle whose case results carry no position and checkpoints no generation (written
    # before those fields existed), and which credits the child to its run on the checkpoint
    # (``created_by_run``, before the producing run moved to the unlearning run), plus a
    # checkpoint credited to a run the bundle holds no unlearning row for
    project = Project.objects.get(slug="safety")
    run_id = executed_project["unlearning"].run_id
    bystander = services.checkpoint_register(model=executed_project["parent"].model, kind="reference", actor=executed_project["parent"].created_by, external_ref="org/other")
    other_run = run_create(project=project, kind="evaluation", created_by=bystander.created_by)
    bundle.project_export(project=project, path=tmp_path / "new.tar.gz")
    old = tmp_path / "old.tar.gz"
    with tarfile.open(tmp_path / "new.tar.gz") as source, tarfile.open(old, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "objects.json":
                objects = json.loads(data)
                for item in objects:
                    if item["model"] == "evals.caseresult":
                        del item["fields"]["position"]
                    if item["model"] == "versions.checkpoint":
                        del item["fields"]["generation"]
                        item["fields"]["created_by_run"] = {executed_project["child"].pk: run_id, bystander.pk: other_run.pk}.get(item["pk"])
                    if item["model"] == "unlearning.unlearningrun":
                        item["fields"]["produced_checkpoint"] = None
                data = json.dumps(objects).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))

    # when the installation is wiped and the old bundle imported
    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(_artifact_root)
    bundle.project_import(path=old, memberships=True)

    # then the results are numbered 1..n in the order they were written, and the unlearned child
    # is one generation below its parent
    assert list(CaseResult.objects.order_by("pk").values_list("position", flat=True)) == [1, 2]
    assert Checkpoint.objects.get(pk=executed_project["parent"].pk).generation == 0
    assert Checkpoint.objects.get(pk=executed_project["child"].pk).generation == 1
    # and the child is credited to its run as before, through the unlearning run
    assert UnlearningRun.objects.get().produced_checkpoint_id == executed_project["child"].pk
    assert _api_row(Checkpoint.objects.get(pk=executed_project["child"].pk))["created_by_run"] == run_id
    # and the other checkpoint keeps its run's id in its metadata rather than losing it
    restored_bystander = Checkpoint.objects.get(pk=bystander.pk)
    assert (_api_row(restored_bystander)["created_by_run"], restored_bystander.metadata) == (None, {"created_by_run": other_run.pk})
