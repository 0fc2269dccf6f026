import json
import struct

import pytest

from tests.versions.checkpoint_files import files_of, pickled_bytes, write_adapter, write_full
from versions import blob_store, checkpoint_materialization, selectors, services
from core.errors import UnsafeInput, ValidationFailed
from versions.models import Blob, Checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user, base_ref="org/llama", base_revision="abc123")


def test_full_checkpoint_is_stored_by_hash_and_read_back_verified(model, user, tmp_path, _artifact_root):
    folder = write_full(tmp_path / "ckpt")

    checkpoint = services.checkpoint_register_directory(model=model, directory=folder, actor=user, metadata={"note": "base"})

    assert (checkpoint.number, checkpoint.kind) == (1, "full")
    assert [f.path for f in checkpoint.files.all()] == ["config.json", "model.safetensors", "tokenizer.json"]
    stored = checkpoint.files.get(path="model.safetensors")
    assert blob_store.blob_read_bytes(stored.blob) == (folder / "model.safetensors").read_bytes()
    assert checkpoint.total_size == sum(p.stat().st_size for p in folder.iterdir())


def test_identical_files_are_stored_once(model, user, tmp_path, _artifact_root):
    folder = write_full(tmp_path / "ckpt")
    first = services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    blobs_before = Blob.objects.count()

    second = services.checkpoint_register_directory(model=model, directory=folder, actor=user)

    assert Blob.objects.count() == blobs_before == 3
    assert second.number == 2 and second.sha256 == first.sha256
    assert len(list(_artifact_root.rglob("*"))) - len([p for p in _artifact_root.rglob("*") if p.is_dir()]) == 3


def test_corrupted_blob_is_an_error_not_data(model, user, tmp_path, _artifact_root):
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "c"), actor=user)
    blob = checkpoint.files.get(path="config.json").blob
    (_artifact_root / blob.storage_name).write_bytes(b'{"tampered": true}')

    with pytest.raises(blob_store.BlobCorrupted, match="failed verification"):
        blob_store.blob_read_bytes(blob)


@pytest.mark.parametrize("name", ["weights.bin", "model.pt", "model.pth", "data.pkl"])
def test_pickle_extensions_are_refused_and_nothing_is_stored(model, user, tmp_path, name):
    folder = write_full(tmp_path / "c", extra={name: pickled_bytes()})

    with pytest.raises(UnsafeInput, match="pickle"):
        services.checkpoint_register_directory(model=model, directory=folder, actor=user)

    assert Blob.objects.count() == 0 and Checkpoint.objects.count() == 0


def test_pickle_disguised_as_json_is_refused(model, user, tmp_path):
    folder = write_full(tmp_path / "c", extra={"special.json": pickled_bytes()})
    with pytest.raises(UnsafeInput, match="content is a Python pickle"):
        services.checkpoint_register_directory(model=model, directory=folder, actor=user)


def test_safetensors_with_a_lying_header_is_refused(model, user, tmp_path):
    folder = write_full(tmp_path / "c")
    raw = (folder / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    header["w"]["shape"] = [8, 8]  # claims 256 bytes, holds 64
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length :])

    with pytest.raises(UnsafeInput, match=r"not a valid safetensors file \(.*invalid shape, data type, or offset for tensor\)"):
        services.checkpoint_register_directory(model=model, directory=folder, actor=user)
    assert Blob.objects.count() == 0


@pytest.mark.parametrize("name", ["../escape.json", "/etc/passwd", "a/../../b.json", "dir\\x.json"])
def test_unsafe_file_names_are_refused(model, user, tmp_path, name):
    folder = write_full(tmp_path / "c")
    files = files_of(folder) | {name: folder / "config.json"}
    with pytest.raises(UnsafeInput, match="Unsafe file name"):
        services.checkpoint_register(model=model, kind="full", actor=user, files=files)


def test_unknown_layout_is_refused(model, user, tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(ValidationFailed, match="Unknown checkpoint layout"):
        services.checkpoint_register_directory(model=model, directory=folder, actor=user)


def test_adapter_needs_a_parent_and_materializes_as_a_chain(model, user, tmp_path):
    base = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    with pytest.raises(ValidationFailed, match="needs a parent"):
        services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "a1"), actor=user)

    first = services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "a1"), actor=user, parents=[(base, "unlearned-from")])
    second = services.checkpoint_register_directory(model=model, directory=write_adapter(tmp_path / "a2", seed=1), actor=user, parents=[(first, "unlearned-from")])
    materialized = checkpoint_materialization.checkpoint_materialize(checkpoint=second, directory=tmp_path / "cache")

    assert materialized.base == str(tmp_path / "cache" / base.sha256)
    assert [p.name for p in materialized.adapters] == [first.sha256, second.sha256]
    assert (materialized.adapters[1] / "adapter_model.safetensors").read_bytes() == (tmp_path / "a2" / "adapter_model.safetensors").read_bytes()


def test_a_checkpoint_another_process_published_first_is_kept_and_our_copy_dropped(model, user, tmp_path):
    # given a checkpoint that a second worker laid out first, while this one wrote its own copy
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    cache = tmp_path / "cache"
    published = checkpoint_materialization.checkpoint_write_files(checkpoint=checkpoint, directory=cache / checkpoint.sha256)
    ours = cache / ".staging-ours"
    ours.mkdir()
    (ours / "config.json").write_text("{}")
    (ours / ".lethe-complete").write_text(checkpoint.sha256)

    # when this worker publishes its copy after the other's
    folder = checkpoint_materialization.checkpoint_folder_publish(staging=ours, directory=published, sha256=checkpoint.sha256)

    # then the other's folder stands, whole, and ours is gone (it failed with "Directory not empty")
    assert folder == published
    assert (published / "model.safetensors").read_bytes() == (tmp_path / "base" / "model.safetensors").read_bytes()
    assert not ours.exists()
    assert sorted(path.name for path in cache.iterdir()) == [checkpoint.sha256]


def test_a_folder_left_incomplete_is_replaced_when_published(model, user, tmp_path):
    # given a folder a killed writer left without its completion marker
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    directory = tmp_path / "cache" / checkpoint.sha256
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"half")

    # when the checkpoint is laid out
    checkpoint_materialization.checkpoint_write_files(checkpoint=checkpoint, directory=directory)

    # then the folder holds the checkpoint's files and says it is complete
    assert (directory / "model.safetensors").read_bytes() == (tmp_path / "base" / "model.safetensors").read_bytes()
    assert (directory / ".lethe-complete").read_text() == checkpoint.sha256
    assert sorted(path.name for path in directory.parent.iterdir()) == [checkpoint.sha256]


def test_reference_checkpoint_materializes_to_its_hub_id(model, user):
    checkpoint = services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/llama", external_revision="abc123")
    materialized = checkpoint_materialization.checkpoint_materialize(checkpoint=checkpoint)
    assert (materialized.base, materialized.revision, materialized.adapters) == ("org/llama", "abc123", [])


def test_lineage_ancestors_descendants_and_filters(model, user):
    def ref(n):
        return services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}")

    root = ref(0)
    a = services.checkpoint_register(
        model=model, kind="reference", actor=user, external_ref="org/a", parents=[(root, "unlearned-from")], lineage_method="npo", forget_dataset_sha256="f" * 64
    )
    b = services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/b", parents=[(a, "unlearned-from")], lineage_method="yao")
    side = services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/side", parents=[(root, "fine-tuned-from")])
    merged = services.checkpoint_register(model=model, kind="reference", actor=user, external_ref="org/merged", parents=[(b, "merged-from"), (side, "merged-from")])

    assert [(c.number, d) for c, d in selectors.checkpoint_ancestors(checkpoint=merged)] == [(3, 1), (4, 1), (1, 2), (2, 2)]
    assert [(c.number, d) for c, d in selectors.checkpoint_descendants(checkpoint=root)] == [(2, 1), (4, 1), (3, 2), (5, 2)]
    assert [c.number for c, _ in selectors.checkpoint_descendants(checkpoint=root, method="yao")] == [3]
    assert [c.number for c, _ in selectors.checkpoint_descendants(checkpoint=root, dataset_sha256="f" * 64)] == [2]
    with pytest.raises(ValidationFailed, match="cycle"):
        services.lineage_edge_add(child=root, parent=merged, relation="fine-tuned-from", actor=user)


def test_lineage_of_depth_2000_is_one_statement(model, user, django_assert_num_queries):
    from versions.models import Checkpoint, LineageEdge

    chain = Checkpoint.objects.bulk_create(
        [Checkpoint(model=model, number=n, kind="reference", external_ref=f"org/{n}", sha256=f"{n:064d}", created_by=user) for n in range(1, 2001)]
    )
    LineageEdge.objects.bulk_create([LineageEdge(child=chain[i], parent=chain[i - 1], relation="unlearned-from") for i in range(1, 2000)])

    with django_assert_num_queries(1):
        ancestors = selectors.checkpoint_ancestors(checkpoint=chain[-1])
    with django_assert_num_queries(1):
        descendants = selectors.checkpoint_descendants(checkpoint=chain[0])

    assert len(ancestors) == 1999 and ancestors[-1] == (chain[0], 1999)
    assert len(descendants) == 1999 and descendants[-1][1] == 1999


def test_generation_counts_steps_from_a_root_through_the_longest_parent(model, user, api_client):
    # given a root, two unlearning steps, and a merge of step 2 with the root
    root = services.checkpoint_register(model=model, kind="reference", external_ref="org/base", actor=user)
    step1 = services.checkpoint_register(model=model, kind="reference", external_ref="org/s1", actor=user, parents=[(root, "unlearned-from")])
    step2 = services.checkpoint_register(model=model, kind="reference", external_ref="org/s2", actor=user, parents=[(step1, "unlearned-from")])
    merged = services.checkpoint_register(model=model, kind="reference", external_ref="org/m", actor=user, parents=[(root, "merged-from"), (step2, "merged-from")])

    # then each is one generation below its highest parent, in the rows and through the API
    assert [c.generation for c in (root, step1, step2, merged)] == [0, 1, 2, 3]
    body = api_client.get(f"/api/v1/projects/{model.project.slug}/models/{model.name}/checkpoints/").json()
    assert [(row["number"], row["generation"]) for row in body["results"]] == [(4, 3), (3, 2), (2, 1), (1, 0)]
