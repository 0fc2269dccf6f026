"""API: models, checkpoints (reference, upload, archives), files, download, lineage, tags and
model labels. Every refused upload stores nothing."""

import io
import json
import stat
import struct
import tarfile
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.versions.checkpoint_files import pickled_bytes, write_adapter, write_full
from versions import services
from versions.models import Blob, Checkpoint, LabelEvent

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/projects/safety/models"
CHECKPOINTS = f"{MODELS}/llama-tiny/checkpoints"


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user, base_ref="org/llama", base_revision="abc123")


def upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def folder_parts(folder):
    return {p.relative_to(folder).as_posix(): upload(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def tar_bytes(members, mode="w"):
    """members: [(TarInfo kwargs, bytes or None)]"""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for fields, content in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def tar_of_folder(folder, prefix=""):
    return tar_bytes([({"name": prefix + p.relative_to(folder).as_posix()}, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()])


def assert_nothing_stored(artifact_root):
    assert (Blob.objects.count(), Checkpoint.objects.count()) == (0, 0)
    assert [p for p in artifact_root.rglob("*") if p.is_file()] == []


def test_create_and_list_models(project, api_client):
    created = api_client.post(f"{MODELS}/", {"name": "llama-tiny", "base_ref": "org/llama", "base_revision": "abc"})
    duplicate = api_client.post(f"{MODELS}/", {"name": "llama-tiny"})
    listed = api_client.get(f"{MODELS}/").json()

    assert created.status_code == 201
    assert {k: created.json()[k] for k in ("name", "base_ref", "base_revision", "checkpoint_count", "labels")} == {
        "name": "llama-tiny",
        "base_ref": "org/llama",
        "base_revision": "abc",
        "checkpoint_count": 0,
        "labels": [],
    }
    assert duplicate.status_code == 409
    assert [m["name"] for m in listed["results"]] == ["llama-tiny"]


def test_register_a_reference_with_json(model, api_client):
    response = api_client.post(
        f"{CHECKPOINTS}/", {"kind": "reference", "external_ref": "org/llama", "external_revision": "abc123", "metadata": {"seed": 1}, "message": "base"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    checkpoint = Checkpoint.objects.get()
    del body["created_at"]
    assert body == {
        "number": 1,
        "kind": "reference",
        "external_ref": "org/llama",
        "external_revision": "abc123",
        "endpoint": {},
        "architecture": "causal-lm",
        "message": "base",
        "metadata": {"seed": 1},
        "weight_change": {},
        "sha256": checkpoint.sha256,
        "total_size": 0,
        "generation": 0,
        "parents": [],
        "labels": [],
        "tags": [],
        "created_by": "alice",
        "created_by_run": None,
    }


def test_json_cannot_register_stored_weights(model, api_client, _artifact_root):
    response = api_client.post(f"{CHECKPOINTS}/", {"kind": "full", "external_ref": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "kind": ["JSON registers references to external weights (kind 'reference') or served models (kind 'endpoint'); upload adapter and full checkpoints as multipart/form-data."]
    }
    assert_nothing_stored(_artifact_root)


def test_upload_files_as_parts_named_by_path(model, api_client, tmp_path):
    folder = write_full(tmp_path / "full")

    response = api_client.post(f"{CHECKPOINTS}/", {**folder_parts(folder), "message": "uploaded", "metadata": '{"seed": 3}'}, format="multipart")

    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["metadata"], response.json()["message"]) == ("full", {"seed": 3}, "uploaded")
    files = api_client.get(f"{CHECKPOINTS}/1/files/").json()["results"]
    assert [(f["path"], f["size"]) for f in files] == [(p.name, p.stat().st_size) for p in sorted(folder.iterdir())]


def test_upload_files_with_parallel_paths_and_an_adapter_parent(model, user, api_client, tmp_path):
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    adapter = write_adapter(tmp_path / "adapter")

    response = api_client.post(
        f"{CHECKPOINTS}/",
        {
            "files": [upload(adapter / "adapter_config.json", "a"), upload(adapter / "adapter_model.safetensors", "b")],
            "paths": ["adapter_config.json", "adapter_model.safetensors"],
            "parents": json.dumps([{"number": 1, "relation": "unlearned-from"}]),
            "lineage_method": "npo",
        },
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["parents"]) == ("adapter", [{"model": "llama-tiny", "number": 1, "relation": "unlearned-from", "method": "npo"}])


@pytest.mark.parametrize("mode,name", [("w", "ckpt.tar"), ("w:gz", "ckpt.tar.gz"), ("zip", "ckpt.zip")])
def test_upload_one_archive_with_a_top_folder(model, api_client, tmp_path, mode, name):
    folder = write_full(tmp_path / "full")
    if mode == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"my-model/{path.name}")
        data = buffer.getvalue()
    else:
        data = tar_bytes([({"name": f"my-model/{p.name}"}, p.read_bytes()) for p in sorted(folder.iterdir())], mode=mode)

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile(name, data)}, format="multipart")

    assert response.status_code == 201, response.json()
    direct = services.checkpoint_register_directory(model=Checkpoint.objects.get().model, directory=folder, actor=Checkpoint.objects.get().created_by)
    assert response.json()["sha256"] == direct.sha256


@pytest.mark.parametrize(
    "member,message",
    [
        ({"name": "../escape.json"}, "Archive member '../escape.json': path traversal ('..') is not allowed; nothing was stored."),
        ({"name": "/etc/evil.json"}, "Archive member '/etc/evil.json': absolute paths are not allowed; nothing was stored."),
        ({"name": "link.json", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "Archive member 'link.json' is a link; links are refused; nothing was stored."),
        ({"name": "hard.json", "type": tarfile.LNKTYPE, "linkname": "config.json"}, "Archive member 'hard.json' is a link; links are refused; nothing was stored."),
        ({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "Archive member 'dev' is a device, fifo or other special file; nothing was stored."),
    ],
)
def test_unsafe_tar_members_are_refused(model, api_client, tmp_path, _artifact_root, member, message):
    folder = write_full(tmp_path / "full")
    data = tar_bytes([({"name": p.name}, p.read_bytes()) for p in sorted(folder.iterdir())] + [(member, None if "type" in member else b"{}")])

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("c.tar", data)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "unsafe_input", "message": message, "fields": {}}
    assert_nothing_stored(_artifact_root)


def test_zip_symlink_is_refused(model, api_client, _artifact_root):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("config.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("c.zip", buffer.getvalue())}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Archive member 'config.json' is a symbolic link; links are refused; nothing was stored."
    assert_nothing_stored(_artifact_root)


def test_zip_bomb_is_refused_by_ratio(model, api_client, _artifact_root):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b"\0" * (4 * 1024 * 1024))
    compressed = len(buffer.getvalue())

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("bomb.zip", buffer.getvalue())}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"Archive expands more than 200:1 ({compressed} bytes compressed), reached at config.json: refused as an archive bomb; nothing was stored."
    )
    assert_nothing_stored(_artifact_root)


def test_archive_over_the_expanded_limit_is_413(model, api_client, tmp_path, settings, _artifact_root):
    settings.LETHE_MAX_ARCHIVE_EXPANDED_BYTES = 100
    data = tar_of_folder(write_full(tmp_path / "full"))

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("c.tar", data)}, format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["message"].startswith("Archive expands to more than 100 bytes (LETHE_MAX_ARCHIVE_EXPANDED_BYTES)")
    assert_nothing_stored(_artifact_root)


def test_archive_with_too_many_members_is_refused(model, api_client, tmp_path, settings, _artifact_root):
    settings.LETHE_MAX_ARCHIVE_MEMBERS = 2
    data = tar_of_folder(write_full(tmp_path / "full"))

    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("c.tar", data)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Archive has more than 2 members; nothing was stored."
    assert_nothing_stored(_artifact_root)


def test_unknown_archive_type_is_refused(model, api_client, _artifact_root):
    response = api_client.post(f"{CHECKPOINTS}/", {"archive": SimpleUploadedFile("c.rar", b"Rar!")}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unsupported archive 'c.rar': expected a name ending in .tar, .tar.gz, .tgz, .zip."
    assert_nothing_stored(_artifact_root)


@pytest.mark.parametrize("name", ["weights.bin", "model.pt", "notes.json", "model.safetensors"])
def test_pickles_under_any_name_are_refused(model, api_client, tmp_path, _artifact_root, name):
    parts = folder_parts(write_full(tmp_path / "full")) | {name: SimpleUploadedFile(name, pickled_bytes())}

    response = api_client.post(f"{CHECKPOINTS}/", parts, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsafe_input"
    assert "pickle" in response.json()["error"]["message"]
    assert_nothing_stored(_artifact_root)


def test_lying_safetensors_header_is_refused(model, api_client, tmp_path, _artifact_root):
    folder = write_full(tmp_path / "full")
    raw = (folder / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    header["w"]["shape"] = [8, 8]
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])

    response = api_client.post(f"{CHECKPOINTS}/", folder_parts(folder), format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid shape, data type, or offset for tensor)."
    )
    assert_nothing_stored(_artifact_root)


def test_path_traversal_in_a_part_name_is_refused(model, api_client, tmp_path, _artifact_root):
    parts = folder_parts(write_full(tmp_path / "full")) | {"../escape.json": SimpleUploadedFile("x.json", b"{}")}

    response = api_client.post(f"{CHECKPOINTS}/", parts, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unsafe file name '../escape.json': path traversal ('..') is not allowed."
    assert_nothing_stored(_artifact_root)


def test_file_over_the_upload_limit_is_413(model, api_client, tmp_path, settings, _artifact_root):
    settings.LETHE_MAX_UPLOAD_FILE_BYTES = 100

    response = api_client.post(f"{CHECKPOINTS}/", folder_parts(write_full(tmp_path / "full")), format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "over the limit of 100 bytes (LETHE_MAX_UPLOAD_FILE_BYTES)" in response.json()["error"]["message"]
    assert_nothing_stored(_artifact_root)


def test_multipart_without_files_and_wrong_content_type(model, api_client, _artifact_root):
    empty = api_client.post(f"{CHECKPOINTS}/", {"message": "nothing"}, format="multipart")
    text = api_client.post(f"{CHECKPOINTS}/", "weights", content_type="application/octet-stream")

    assert empty.status_code == 400 and empty.json()["error"]["message"].startswith("No files: send the checkpoint's files")
    assert text.status_code == 415
    assert_nothing_stored(_artifact_root)


def test_download_streams_a_tar_that_from_pretrained_loads(model, api_client, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    original = LlamaForCausalLM(config)
    original.save_pretrained(tmp_path / "tiny")
    registered = api_client.post(f"{CHECKPOINTS}/", folder_parts(tmp_path / "tiny"), format="multipart")
    assert registered.status_code == 201, registered.json()

    response = api_client.get(f"{CHECKPOINTS}/1/download/")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="llama-tiny-1.tar"'
    data = b"".join(response.streaming_content)
    assert len(data) == int(response["Content-Length"])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert sorted(archive.getnames()) == sorted(p.name for p in (tmp_path / "tiny").iterdir())
        archive.extractall(tmp_path / "out", filter="data")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(loaded(ids).logits, original(ids).logits)


def test_download_of_a_corrupted_blob_stops_the_stream(model, user, api_client, tmp_path, _artifact_root):
    from versions.blob_store import BlobCorrupted

    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=user)
    blob = checkpoint.files.get(path="model.safetensors").blob
    (_artifact_root / blob.storage_name).write_bytes(b"\0" * blob.size)

    response = api_client.get(f"{CHECKPOINTS}/1/download/")

    with pytest.raises(BlobCorrupted, match="failed verification"):
        b"".join(response.streaming_content)


def test_reference_has_nothing_to_download(model, user, api_client):
    services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/llama")

    response = api_client.get(f"{CHECKPOINTS}/1/download/")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "llama-tiny@1 is a reference to external weights (org/llama); it has no stored files."


def test_lineage_ancestors_descendants_and_filters(model, user, api_client):
    def ref(name, parents=(), **edge):
        return services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=name, parents=parents, **edge)

    root = ref("org/root")
    a = ref("org/a", [(root, "unlearned-from")], lineage_method="npo", forget_dataset_sha256="f" * 64)
    ref("org/b", [(a, "unlearned-from")], lineage_method="yao")

    of_a = api_client.get(f"{CHECKPOINTS}/2/lineage/").json()
    by_method = api_client.get(f"{CHECKPOINTS}/1/lineage/?method=yao").json()
    by_dataset = api_client.get(f"{CHECKPOINTS}/1/lineage/?dataset={'f' * 64}").json()
    bad = api_client.get(f"{CHECKPOINTS}/1/lineage/?dataset=xyz")

    assert (of_a["model"], of_a["number"]) == ("llama-tiny", 2)
    assert [(n["model"], n["number"], n["depth"]) for n in of_a["ancestors"]] == [("llama-tiny", 1, 1)]
    assert [(n["number"], n["depth"]) for n in of_a["descendants"]] == [(3, 1)]
    assert [(n["number"], n["depth"]) for n in by_method["descendants"]] == [(3, 2)]
    assert [n["number"] for n in by_dataset["descendants"]] == [2]
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["dataset"]


def test_a_checkpoint_url_says_whether_the_model_or_the_checkpoint_is_missing(model, user, api_client):
    # given llama-tiny with one checkpoint, read with its model in one statement
    services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/root")

    # when a missing checkpoint of it, and a checkpoint of a missing model, are asked for
    no_checkpoint = api_client.get(f"{CHECKPOINTS}/2/lineage/")
    no_model = api_client.get(f"{MODELS}/llama-huge/checkpoints/1/lineage/")

    # then each answers 404 naming what is missing
    assert (no_checkpoint.status_code, no_checkpoint.json()["error"]["message"]) == (404, "llama-tiny has no checkpoint 2.")
    assert (no_model.status_code, no_model.json()["error"]["message"]) == (404, "Model 'llama-huge' not found in safety.")


def test_a_registration_answers_the_checkpoint_exactly_as_reading_it_back_does(model, user, api_client):
    # given a parent checkpoint
    services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/root")

    # when a child is registered with metadata, tags and its parent (answered from the new instance, not re-read)
    registered = api_client.post(
        f"{CHECKPOINTS}/",
        {
            "kind": "reference",
            "external_ref": "org/child",
            "external_revision": "r1",
            "message": "unlearned",
            "metadata": {"seed": 3},
            "tags": ["validated", "a-first"],
            "parents": [{"number": 1, "relation": "unlearned-from"}],
            "lineage_method": "npo",
        },
        format="json",
    )

    # then its body is the one a later read gives, field for field
    assert registered.status_code == 201, registered.content
    read_back = api_client.get(f"{CHECKPOINTS}/2/").json()
    assert registered.json() == read_back
    assert (read_back["tags"], read_back["parents"], read_back["created_by"]) == (
        ["a-first", "validated"],
        [{"model": "llama-tiny", "number": 1, "relation": "unlearned-from", "method": "npo"}],
        "alice",
    )


def test_lineage_walks_the_nearest_generations_and_says_when_it_stopped(model, user, api_client):
    # given a chain 1 <- 2 <- ... <- 6 whose last edge alone was made by "yao"
    chain = [services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/0")]
    for n in range(1, 6):
        chain.append(
            services.checkpoint_register(
                model=model, kind="reference", actor=user, external_ref=f"org/{n}", parents=[(chain[-1], "unlearned-from")], lineage_method="yao" if n == 5 else "npo"
            )
        )

    # when the middle is read two generations each way, the whole walk is read, and the root's yao descendants two deep
    near = api_client.get(f"{CHECKPOINTS}/3/lineage/?depth=2").json()
    whole = api_client.get(f"{CHECKPOINTS}/3/lineage/").json()
    filtered = api_client.get(f"{CHECKPOINTS}/1/lineage/?depth=2&method=yao").json()
    refused = api_client.get(f"{CHECKPOINTS}/3/lineage/?depth=0")

    # then each side stops at the bound and says whether more lies beyond it, also when the filter keeps nothing near
    assert ([n["number"] for n in near["ancestors"]], near["ancestors_truncated"]) == ([2, 1], False)
    assert ([n["number"] for n in near["descendants"]], near["descendants_truncated"]) == ([4, 5], True)
    assert (whole["depth"], [n["number"] for n in whole["descendants"]], whole["descendants_truncated"]) == (100, [4, 5, 6], False)
    assert (filtered["descendants"], filtered["descendants_truncated"]) == ([], True)
    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["depth"]


def test_checkpoint_tags_and_model_labels(model, user, api_client):
    for n in range(2):
        services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}")

    tagged = api_client.post(f"{CHECKPOINTS}/2/tags/", {"name": "asr<5%@starter-v1"})
    created = api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 1, "reason": "first"}, format="json")
    promoted = api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 2, "reason": "safer"}, format="json")
    same = api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 2}, format="json")
    unknown_eval = api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 1, "evaluation": 999}, format="json")
    detail = api_client.get(f"{CHECKPOINTS}/2/").json()
    history = api_client.get(f"{MODELS}/llama-tiny/labels/production/history/").json()
    resolved = api_client.get("/api/v1/projects/safety/resolve/?ref=llama-tiny@production").json()
    untagged = api_client.delete(f"{CHECKPOINTS}/2/tags/asr%3C5%25%40starter-v1/")

    assert tagged.status_code == 201
    assert (created.status_code, promoted.status_code, promoted.json()["action"]) == (201, 200, "promote")
    assert same.status_code == 409 and same.json()["error"]["message"] == "'production' already points at llama-tiny@2."
    assert unknown_eval.status_code == 400 and unknown_eval.json()["error"]["fields"] == {"evaluation": ["Not found."]}
    assert (detail["labels"], detail["tags"]) == (["production"], ["asr<5%@starter-v1"])
    assert [(e["action"], e["to_number"]) for e in history["results"]] == [("promote", 2), ("create", 1)]
    # each move answered its event as the history shows it, with the move's impact beside it
    answers = [promoted.json(), created.json()]
    assert history["results"] == [{key: value for key, value in answer.items() if key != "impact"} for answer in answers]
    assert [answer["impact"]["summary"] for answer in answers] == ["production: #1 -> #2 (promotion)", "production: (unset) -> #1 (creation)"]
    assert (resolved["kind"], resolved["number"]) == ("checkpoint", 2)
    assert untagged.status_code == 204
    assert api_client.get(f"{MODELS}/llama-tiny/").json()["labels"] == [{"name": "production", "number": 2}]
    assert LabelEvent.objects.count() == 2


def test_promotion_gate_asks_for_an_evaluation(project, model, user, api_client):
    services.project_settings_update(project=project, actor=user, require_evaluation_for_promotion=True)
    for n in range(2):
        services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}")
    api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 1}, format="json")

    refused = api_client.put(f"{MODELS}/llama-tiny/labels/production/", {"checkpoint": 2}, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"]["fields"] == {"evaluation": ["Required by the promotion gate."]}


def test_no_delete_route_for_checkpoints(model, user, api_client):
    services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/m")

    assert api_client.delete(f"{CHECKPOINTS}/1/").status_code == 405
    assert Checkpoint.objects.count() == 1


@pytest.mark.parametrize("rows", [3, 30])
def test_model_and_checkpoint_lists_do_not_grow_in_queries(project, model, user, api_client, rows, django_assert_num_queries):
    previous = None
    for n in range(rows):
        previous = services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}", parents=[(previous, "fine-tuned-from")] if previous else ())
        services.tag_add(name=f"t{n}", checkpoint=previous, actor=user)
        services.label_move(name="staging", actor=user, checkpoint=previous)
        services.model_create(project=project, name=f"other-{n}", actor=user)

    with django_assert_num_queries(4):  # project and role, count, page, labels
        assert api_client.get(f"{MODELS}/?page_size=100").json()["count"] == rows + 1
    with django_assert_num_queries(4):  # project and role, model, page (by number: no count), labels, tags and parents
        assert api_client.get(f"{CHECKPOINTS}/?page_size=100").json()["count"] == rows
    with django_assert_num_queries(4):  # project and role, checkpoint with its model, ancestors, descendants (with their models)
        assert len(api_client.get(f"{CHECKPOINTS}/{rows}/lineage/").json()["ancestors"]) == rows - 1


def test_tags_at_registration_and_the_list_rows(model, user, api_client):
    # given a checkpoint registered with tags, one with two parents (second added first), and a label
    from rest_framework.fields import DateTimeField

    first = api_client.post(f"{CHECKPOINTS}/", {"kind": "reference", "external_ref": "org/a", "tags": ["validated", "base"]}, format="json")
    other = services.checkpoint_register(model=model, kind="reference", external_ref="org/b", actor=user)
    services.checkpoint_register(
        model=model,
        kind="reference",
        external_ref="org/c",
        actor=user,
        parents=[(other, "merged-from"), (Checkpoint.objects.get(number=1), "fine-tuned-from")],
        lineage_method="merge",
    )
    services.label_move(name="production", checkpoint=other, actor=user)

    # when the list and one checkpoint are read
    listed = api_client.get(f"{CHECKPOINTS}/").json()["results"]
    detail = api_client.get(f"{CHECKPOINTS}/1/").json()
    tagged = api_client.get(f"{CHECKPOINTS}/?tag=validated").json()["results"]

    # then tags were stored with the registration, and each row carries its labels, tags and parents in order
    assert first.status_code == 201 and first.json()["tags"] == ["base", "validated"]
    assert [(row["number"], row["labels"], row["tags"], row["parents"]) for row in listed] == [
        (
            3,
            [],
            [],
            [
                {"model": "llama-tiny", "number": 2, "relation": "merged-from", "method": "merge"},
                {"model": "llama-tiny", "number": 1, "relation": "fine-tuned-from", "method": "merge"},
            ],
        ),
        (2, ["production"], [], []),
        (1, [], ["base", "validated"], []),
    ]
    assert detail == listed[2] == tagged[0] and len(tagged) == 1
    assert detail["created_at"] == DateTimeField().to_representation(Checkpoint.objects.get(number=1).created_at)


@pytest.mark.parametrize("tags", [[" padded"], [""], ["x" * 101], "validated"])
def test_invalid_tags_refuse_the_registration(model, api_client, tags):
    response = api_client.post(f"{CHECKPOINTS}/", {"kind": "reference", "external_ref": "org/a", "tags": tags}, format="json")

    assert response.status_code == 400
    assert Checkpoint.objects.count() == 0
