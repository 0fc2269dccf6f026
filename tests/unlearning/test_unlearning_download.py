"""A downloaded adapter names its base portably and says which adapters to apply first: no
server path in any byte of the download."""

import io
import json
import tarfile

import pytest
import torch

from jobs.services import run_execute
from tests.unlearning.conftest import FORGET_ROWS
from mlcore.loading import load_model_and_tokenizer
from mlcore.text import encode_pairs
from unlearning.services import unlearning_run_create
from versions import services
from versions.blob_store import blob_read_bytes
from versions.checkpoint_materialization import checkpoint_materialize
from versions.models import Checkpoint

LORA = {"learning_rate": 1e-3, "max_steps": 2, "batch_size": 4}


def download(api_client, project, checkpoint):
    response = api_client.get(f"/api/v1/projects/{project.slug}/models/{checkpoint.model.name}/checkpoints/{checkpoint.number}/download/")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert len(data) == int(response["Content-Length"])
    return data


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


def assert_no_server_path(data, *paths):
    for path in paths:
        assert str(path).encode() not in data, path


@pytest.mark.django_db
def test_an_adapter_on_an_adapter_downloads_with_a_portable_base_and_its_chain(
    api_client, project, user, tiny_checkpoint, forget_version, retain_version, lethe_var, _artifact_root, tiny_model_dir, tmp_path
):
    # given an adapter unlearned from an adapter of the tiny base
    first = unlearning_run_create(parent_checkpoint=tiny_checkpoint, method="gradient_ascent", hyperparameters=LORA, forget_dataset_version=forget_version, actor=user)
    adapter = Checkpoint.objects.get(pk=run_execute(run_id=first.run_id, worker="test").result["id"])
    second = unlearning_run_create(parent_checkpoint=adapter, method="gradient_ascent", hyperparameters=LORA, forget_dataset_version=forget_version, actor=user)
    grandchild = Checkpoint.objects.get(pk=run_execute(run_id=second.run_id, worker="test").result["id"])

    # when it is downloaded
    data = download(api_client, project, grandchild)
    files = members(data)

    # then no file names a server path, the base is named as the API names it, and a manifest
    # lists the adapters to apply on it in order
    assert_no_server_path(data, lethe_var, _artifact_root, tiny_model_dir, tmp_path)
    assert sorted(files) == ["adapter_config.json", "adapter_model.safetensors", "lethe-manifest.json"]
    config = json.loads(files["adapter_config.json"])
    assert (config["base_model_name_or_path"], config["revision"]) == ("tiny@1", None)
    assert json.loads(files["lethe-manifest.json"]) == {
        "format": "lethe-checkpoint-manifest/1",
        "checkpoint": "tiny@3",
        "kind": "adapter",
        "architecture": "causal-lm",
        "sha256": grandchild.sha256,
        "base": {"checkpoint": "tiny@1", "kind": "full", "sha256": tiny_checkpoint.sha256},
        "adapters": [{"checkpoint": "tiny@2", "sha256": adapter.sha256}, {"checkpoint": "tiny@3", "sha256": grandchild.sha256}],
    }
    # the stored adapter config is portable already (the download sends the stored bytes)
    assert files["adapter_config.json"] == blob_read_bytes(grandchild.files.get(path="adapter_config.json").blob)

    # and the downloads, applied as the manifest says, give the server's model
    folders = {}
    for checkpoint in (tiny_checkpoint, adapter, grandchild):
        with tarfile.open(fileobj=io.BytesIO(download(api_client, project, checkpoint))) as archive:
            archive.extractall(tmp_path / "off-server" / str(checkpoint), filter="data")
        folders[str(checkpoint)] = tmp_path / "off-server" / str(checkpoint)
    manifest = json.loads(files["lethe-manifest.json"])
    off_server, tokenizer = load_model_and_tokenizer(base=str(folders[manifest["base"]["checkpoint"]]), adapters=[folders[item["checkpoint"]] for item in manifest["adapters"]])
    materialized = checkpoint_materialize(checkpoint=grandchild)
    on_server, _ = load_model_and_tokenizer(base=materialized.base, adapters=materialized.adapters)
    batch = encode_pairs(tokenizer, FORGET_ROWS[:2])
    with torch.no_grad():
        assert torch.equal(off_server(input_ids=batch.input_ids).logits, on_server(input_ids=batch.input_ids).logits)


@pytest.mark.django_db
def test_an_adapter_on_a_hub_reference_names_the_hub_id_and_revision_even_if_stored_with_a_server_path(api_client, project, user, tiny_model_dir, tmp_path):
    # given an adapter registered on a hub reference, its config naming a local folder as peft writes it
    from peft import LoraConfig, get_peft_model

    model = services.model_create(project=project, name="hub-based", actor=user)
    reference = services.checkpoint_register(model=model, kind="reference", external_ref="org/tiny-llama", external_revision="0123abc", actor=user)
    base, _ = load_model_and_tokenizer(base=str(tiny_model_dir))
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model_dir)
    (tmp_path / "adapter" / "README.md").unlink()
    adapter = services.checkpoint_register_directory(model=model, directory=tmp_path / "adapter", actor=user, kind="adapter", parents=[(reference, "fine-tuned-from")])

    # when it is downloaded
    data = download(api_client, project, adapter)
    files = members(data)

    # then the config names the hub id and revision, and so does the manifest
    assert_no_server_path(data, tiny_model_dir, tmp_path)
    config = json.loads(files["adapter_config.json"])
    assert (config["base_model_name_or_path"], config["revision"]) == ("org/tiny-llama", "0123abc")
    assert config["r"] == 2 and config["target_modules"] == ["q_proj"]
    manifest = json.loads(files["lethe-manifest.json"])
    assert manifest["base"] == {"checkpoint": "hub-based@1", "kind": "reference", "sha256": reference.sha256, "hub_id": "org/tiny-llama", "revision": "0123abc"}
    assert manifest["adapters"] == [{"checkpoint": "hub-based@2", "sha256": adapter.sha256}]


@pytest.mark.django_db
def test_a_merged_download_loads_with_transformers_alone_and_gives_the_adapter_models_logits(
    api_client, project, user, tiny_checkpoint, forget_version, lethe_var, _artifact_root, tiny_model_dir, tmp_path
):
    from transformers import AutoModelForCausalLM

    # given an adapter unlearned from an adapter of the tiny base
    first = unlearning_run_create(parent_checkpoint=tiny_checkpoint, method="gradient_ascent", hyperparameters=LORA, forget_dataset_version=forget_version, actor=user)
    adapter = Checkpoint.objects.get(pk=run_execute(run_id=first.run_id, worker="test").result["id"])
    second = unlearning_run_create(parent_checkpoint=adapter, method="gradient_ascent", hyperparameters=LORA, forget_dataset_version=forget_version, actor=user)
    grandchild = Checkpoint.objects.get(pk=run_execute(run_id=second.run_id, worker="test").result["id"])

    # when its merged form is downloaded (twice: the second comes from the cache)
    url = f"/api/v1/projects/{project.slug}/models/tiny/checkpoints/{grandchild.number}/download-merged/"
    responses = [api_client.get(url) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0]["Content-Disposition"] == 'attachment; filename="tiny-3-merged.tar"'
    data, again = (b"".join(r.streaming_content) for r in responses)
    assert data == again and len(data) == int(responses[0]["Content-Length"])

    # then it is one full model in safetensors, names no server path, and transformers alone
    # loads it into the adapter model's logits
    assert_no_server_path(data, lethe_var, _artifact_root, tiny_model_dir, tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "merged", filter="data")
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not any(name.endswith((".bin", ".pt", ".pth")) or name.startswith("adapter") for name in names)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    materialized = checkpoint_materialize(checkpoint=grandchild)
    on_server, tokenizer = load_model_and_tokenizer(base=materialized.base, adapters=materialized.adapters)
    batch = encode_pairs(tokenizer, FORGET_ROWS[:2])
    with torch.no_grad():
        assert torch.equal(merged(input_ids=batch.input_ids).logits, on_server(input_ids=batch.input_ids).logits)


@pytest.mark.django_db
def test_a_merged_download_of_a_full_checkpoint_is_refused(api_client, project, tiny_checkpoint):
    response = api_client.get(f"/api/v1/projects/{project.slug}/models/tiny/checkpoints/1/download-merged/")

    assert response.status_code == 409
    assert "tiny@1 is a full checkpoint; only an adapter has a merged form" in json.dumps(response.json())
