import pytest
from safetensors.numpy import load_file, save_file

from jobs.models import RunStatus
from jobs.services import run_execute, run_wait
from tests.unlearning.conftest import wait_until
from unlearning.models import UnlearningRun
from unlearning.services import unlearning_run_create
from versions import services
from core.errors import ValidationFailed
from versions.models import Checkpoint, Label, LineageEdge, Role

LORA_NPO = {"learning_rate": 1e-3, "max_steps": 3, "batch_size": 4}
TINY_MODULES = sorted(
    f"model.layers.{layer}.{block}.{name}"
    for layer in (0, 1)
    for block, names in (("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")), ("mlp", ("gate_proj", "up_proj", "down_proj")))
    for name in names
)


@pytest.mark.django_db
def test_a_run_registers_an_adapter_child_with_lineage_metadata_and_weight_change(api_client, project, tiny_checkpoint, forget_version, retain_version):
    # given an unlearning run created through the API, following a branch label
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/unlearning-runs/",
        {
            "parent_checkpoint": tiny_checkpoint.pk,
            "method": "npo",
            "hyperparameters": LORA_NPO,
            "forget_dataset_version": forget_version.pk,
            "retain_dataset_version": retain_version.pk,
            "seed": 7,
            "branch_label": "safety-branch",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()

    # when a worker executes it
    run = run_execute(run_id=created["run"], worker="test")

    # then the child checkpoint is registered, with lineage, metadata and weight change
    assert (run.status, run.error) == (RunStatus.SUCCEEDED, "")
    child = Checkpoint.objects.get(parent_edges__parent=tiny_checkpoint)
    assert run.result == {"type": "checkpoint", "id": child.pk, "model": "tiny", "number": 2}
    assert child.kind == "adapter"
    assert sorted(child.files.values_list("path", flat=True)) == ["adapter_config.json", "adapter_model.safetensors"]
    edge = LineageEdge.objects.get(child=child)
    assert (edge.parent_id, edge.relation, edge.method) == (tiny_checkpoint.pk, "unlearned-from", "npo")
    assert (edge.forget_dataset_sha256, edge.retain_dataset_sha256) == (forget_version.sha256, retain_version.sha256)
    assert child.metadata["method"] == "npo"
    assert child.metadata["seed"] == 7
    assert child.metadata["steps"] == 3
    assert child.metadata["hyperparameters"]["beta"] == 0.1
    assert child.metadata["hyperparameters"]["max_steps"] == 3
    assert set(child.metadata["library_versions"]) == {"torch", "transformers", "peft"}
    assert child.metadata["applies_to"] == {"checkpoint": "tiny@1", "sha256": tiny_checkpoint.sha256, "chain": ["tiny@1"]}
    assert sorted(child.metadata["final_losses"]) == ["forget_nll", "loss", "npo", "retain_nll"]
    assert Label.objects.get(model=tiny_checkpoint.model, name="safety-branch").checkpoint_id == child.pk

    # and the API shows the finished run, its loss curve and the weight change per module
    detail = api_client.get(f"/api/v1/projects/{project.slug}/unlearning-runs/{created['id']}/").json()
    assert detail["status"] == "succeeded"
    assert detail["progress"] == 1.0
    assert detail["current_step"] == 3
    assert [point["step"] for point in detail["loss_curve"]] == [1, 2, 3]
    assert sorted(detail["loss_curve"][0]) == ["forget_nll", "loss", "npo", "retain_nll", "step"]
    assert detail["produced_checkpoint"]["id"] == child.pk
    assert sorted(detail["produced_checkpoint"]["weight_change"]) == TINY_MODULES
    assert all(value > 0 for value in detail["produced_checkpoint"]["weight_change"].values())

    # and the child's own API record names the run that produced it, in the list and alone
    listed = api_client.get(f"/api/v1/projects/{project.slug}/models/tiny/checkpoints/").json()["results"]
    assert [(row["number"], row["created_by_run"]) for row in listed] == [(2, run.pk), (1, None)]
    assert api_client.get(f"/api/v1/projects/{project.slug}/models/tiny/checkpoints/2/").json()["created_by_run"] == run.pk


@pytest.mark.django_db
def test_a_run_on_an_adapter_parent_trains_on_the_merged_chain(project, user, tiny_checkpoint, forget_version, retain_version):
    # given an adapter child of the tiny base, whose database id is not its number
    other = services.model_create(project=project, name="other", actor=user)
    services.checkpoint_register(model=other, kind="reference", external_ref="org/other", actor=user)
    first = unlearning_run_create(
        parent_checkpoint=tiny_checkpoint,
        method="gradient_difference",
        hyperparameters=LORA_NPO,
        forget_dataset_version=forget_version,
        retain_dataset_version=retain_version,
        actor=user,
    )
    adapter = Checkpoint.objects.get(pk=run_execute(run_id=first.run_id, worker="test").result["id"])

    # when a second run unlearns from the adapter
    second = unlearning_run_create(
        parent_checkpoint=adapter,
        method="gradient_ascent",
        hyperparameters={**LORA_NPO, "max_steps": 2},
        forget_dataset_version=forget_version,
        actor=user,
    )
    run = run_execute(run_id=second.run_id, worker="test")

    # then its adapter is recorded as applying to the chain base -> first adapter, named as the API names them
    grandchild = Checkpoint.objects.get(pk=run.result["id"])
    assert adapter.number == 2 and adapter.pk != adapter.number
    assert grandchild.metadata["applies_to"] == {"checkpoint": "tiny@2", "sha256": adapter.sha256, "chain": ["tiny@1", "tiny@2"]}
    assert LineageEdge.objects.get(child=grandchild).parent_id == adapter.pk


@pytest.mark.django_db
def test_full_fine_tuning_registers_a_full_checkpoint(project, user, tiny_checkpoint, forget_version, retain_version):
    unlearning_run = unlearning_run_create(
        parent_checkpoint=tiny_checkpoint,
        method="kl",
        hyperparameters={**LORA_NPO, "adapter": "full", "max_steps": 2},
        forget_dataset_version=forget_version,
        retain_dataset_version=retain_version,
        actor=user,
    )

    run = run_execute(run_id=unlearning_run.run_id, worker="test")

    child = Checkpoint.objects.get(pk=run.result["id"])
    assert child.kind == "full"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(child.files.values_list("path", flat=True))
    assert "model.embed_tokens" in child.weight_change
    assert child.weight_change["model.layers.0.self_attn.q_proj"] > 0


@pytest.mark.django_db
def test_a_non_finite_loss_fails_the_run_naming_the_step_and_registers_nothing(project, user, tiny_model_dir, tiny_checkpoint, forget_version, tmp_path):
    # given a full checkpoint whose final norm weights hold a NaN: every loss is NaN
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    for source in tiny_model_dir.iterdir():
        (broken_dir / source.name).write_bytes(source.read_bytes())
    weights = load_file(broken_dir / "model.safetensors")
    weights["model.norm.weight"][0] = float("nan")
    save_file(weights, broken_dir / "model.safetensors", metadata={"format": "pt"})
    broken = services.checkpoint_register_directory(model=tiny_checkpoint.model, directory=broken_dir, actor=user, kind="full")
    checkpoints_before = Checkpoint.objects.count()
    unlearning_run = unlearning_run_create(
        parent_checkpoint=broken,
        method="gradient_ascent",
        hyperparameters=LORA_NPO,
        forget_dataset_version=forget_version,
        actor=user,
        branch_label="safety-branch",
    )

    # when it runs
    run = run_execute(run_id=unlearning_run.run_id, worker="test")

    # then it failed at step 1, and nothing was registered or labelled
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the loss became non-finite at step 1 (loss=nan, forget_nll=nan)")
    assert Checkpoint.objects.count() == checkpoints_before
    assert not Label.objects.filter(name="safety-branch").exists()
    assert UnlearningRun.objects.get(pk=unlearning_run.pk).produced_checkpoint is None


def test_a_cancel_between_steps_ends_the_run_cancelled_and_registers_nothing(background, project, user, tiny_checkpoint, forget_version, retain_version, api_client):
    # given a long run that has started stepping on the in-process executor
    unlearning_run = unlearning_run_create(
        parent_checkpoint=tiny_checkpoint,
        method="npo",
        hyperparameters={**LORA_NPO, "max_steps": 100000},
        forget_dataset_version=forget_version,
        retain_dataset_version=retain_version,
        actor=user,
    )
    wait_until(lambda: UnlearningRun.objects.get(pk=unlearning_run.pk).current_step > 0, message="the first steps")

    # when an editor cancels it through the API
    response = api_client.post(f"/api/v1/projects/{project.slug}/unlearning-runs/{unlearning_run.pk}/cancel/")
    run = run_wait(run=unlearning_run.run, timeout=120, poll_seconds=0.05)

    # then it ended cancelled and registered nothing
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True
    assert (run.status, run.error) == (RunStatus.CANCELLED, "cancelled on request")
    assert UnlearningRun.objects.get(pk=unlearning_run.pk).produced_checkpoint is None
    assert Checkpoint.objects.count() == 1


@pytest.mark.django_db
def test_invalid_hyperparameters_are_refused_naming_the_field_and_range(api_client, project, tiny_checkpoint, forget_version):
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/unlearning-runs/",
        {"parent_checkpoint": tiny_checkpoint.pk, "method": "npo", "hyperparameters": {"beta": 0}, "forget_dataset_version": forget_version.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid hyperparameter beta: must be in (0, 10], got 0.0"
    assert UnlearningRun.objects.count() == 0


@pytest.mark.django_db
def test_a_method_that_needs_a_retain_set_is_refused_without_one(project, user, tiny_checkpoint, forget_version):
    with pytest.raises(ValidationFailed) as error:
        unlearning_run_create(parent_checkpoint=tiny_checkpoint, method="yao", hyperparameters={}, forget_dataset_version=forget_version, actor=user)

    assert str(error.value) == "Method yao needs a retain dataset version."


@pytest.mark.django_db
def test_viewers_read_runs_but_cannot_create_them(make_user, client_for, project, user, tiny_checkpoint, forget_version):
    # given a run and a viewer
    unlearning_run = unlearning_run_create(
        parent_checkpoint=tiny_checkpoint,
        method="gradient_ascent",
        hyperparameters=LORA_NPO,
        forget_dataset_version=forget_version,
        actor=user,
    )
    viewer = client_for(make_user("victor", role=Role.VIEWER, project=project))

    # when the viewer lists and tries to create
    listed = viewer.get(f"/api/v1/projects/{project.slug}/unlearning-runs/")
    created = viewer.post(
        f"/api/v1/projects/{project.slug}/unlearning-runs/",
        {"parent_checkpoint": tiny_checkpoint.pk, "method": "gradient_ascent", "forget_dataset_version": forget_version.pk},
        format="json",
    )

    # then
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [unlearning_run.pk]
    assert listed.json()["results"][0]["status"] == "queued"
    assert created.status_code == 403


def test_the_commands_build_the_tiny_model_and_unlearn_it_waiting_for_the_run(background, lethe_var, project, user, forget_version, retain_version):
    from io import StringIO

    from django.core.management import call_command

    # given the tiny model registered by its command
    built = StringIO()
    call_command("make_tiny_model", project=project.slug, model="tiny-cli", user=user.username, train_steps=10, stdout=built)

    # when a run is started from the command line and waited for
    out, err = StringIO(), StringIO()
    call_command(
        "unlearn",
        project=project.slug,
        model="tiny-cli",
        checkpoint=1,
        method="gradient_difference",
        hyperparameters='{"max_steps": 2, "batch_size": 4}',
        forget="harmful-forget@1",
        retain="benign-retain@1",
        user=user.username,
        wait=True,
        stdout=out,
        stderr=err,
    )

    # then both report what they registered
    child = Checkpoint.objects.get(model__name="tiny-cli", number=2)
    assert built.getvalue() == f"tiny-cli@1 {Checkpoint.objects.get(model__name='tiny-cli', number=1).pk}\n"
    assert out.getvalue().splitlines()[-1] == f"tiny-cli@2 registered (checkpoint id {child.pk})"
    assert child.metadata["method"] == "gradient_difference"
