"""safetensors weights are checked by the safetensors library itself, so every dtype it reads is
accepted (modern checkpoints: FP8, MX block scales, FP4/FP6, complex), while Lethe keeps its own
limits around it (header size cap, no pickles). Files are written byte by byte (8-byte header
length, JSON header, data), because torch cannot make every dtype."""

import json
import struct

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.versions.checkpoint_files import write_full
from versions import services
from versions.models import Blob, Checkpoint

pytestmark = pytest.mark.django_db

CHECKPOINTS = "/api/v1/projects/safety/models/llama-tiny/checkpoints"

# dtype -> bits per element, for the dtypes safetensors 0.8 reads.
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "I64": 64,
    "U64": 64,
    "F64": 64,
}


def safetensors_bytes(header, data):
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data


def weights_of(dtype, shape=(4, 8)):
    count = shape[0] * shape[1]
    size = count * DTYPE_BITS[dtype] // 8
    header = {"__metadata__": {"format": "pt"}, "w": {"dtype": dtype, "shape": list(shape), "data_offsets": [0, size]}}
    return safetensors_bytes(header, bytes(range(256)) * (size // 256) + bytes(range(size % 256)))


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="llama-tiny", actor=user, base_ref="org/llama", base_revision="abc123")


def upload_with_weights(api_client, folder, weights):
    parts = {p.name: SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.name != "model.safetensors"}
    parts["model.safetensors"] = SimpleUploadedFile("model.safetensors", weights)
    return api_client.post(f"{CHECKPOINTS}/", parts, format="multipart")


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_a_checkpoint_in_every_dtype_the_library_reads_registers(model, api_client, tmp_path, _artifact_root, dtype):
    weights = weights_of(dtype)

    response = upload_with_weights(api_client, write_full(tmp_path / "full"), weights)

    assert response.status_code == 201, response.json()
    stored = Checkpoint.objects.get().files.get(path="model.safetensors")
    assert stored.size == len(weights)


HEADER = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
MALFORMED = [
    ("too short", b"\x01\x00", "model.safetensors: not a safetensors file (shorter than its 8-byte header length)."),
    ("length past the end", struct.pack("<Q", 1000) + b"{}", "model.safetensors: corrupted safetensors file (header length 1000 exceeds the file)."),
    ("header over Lethe's cap", struct.pack("<Q", 100 * 1024 * 1024 + 1) + b"{}", "model.safetensors: corrupted safetensors file (header length 104857601 exceeds the file)."),
    (
        "size lie",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 16]}}, bytes(16)),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid shape, data type, or offset for tensor).",
    ),
    (
        "unknown dtype",
        safetensors_bytes({"w": {"dtype": "F3", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16)),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid JSON in header: "
        "unknown variant `F3`, expected one of `BOOL`, `F4`, `F6_E2M3`, `F6_E3M2`, `U8`, `I8`, `F8_E5M2`, `F8_E4M3`, "
        "`F8_E8M0`, `F8_E4M3FNUZ`, `F8_E5M2FNUZ`, `I16`, `U16`, `F16`, `BF16`, `I32`, `U32`, `F32`, `C64`, `F64`, "
        "`I64`, `U64` at line 1 column 64).",
    ),
    (
        "trailing bytes",
        safetensors_bytes(HEADER, bytes(20)),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: incomplete metadata, file not fully covered).",
    ),
    (
        "gap between tensors",
        safetensors_bytes({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}}, bytes(6)),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid offset for tensor `b`).",
    ),
    (
        "nested 2,000 deep",
        safetensors_bytes(b'{"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0], "x": ' + b"[" * 2000 + b"]" * 2000 + b"}}", b""),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid JSON in header: recursion limit exceeded at line 1 column 191).",
    ),
    (
        "not JSON",
        struct.pack("<Q", 8) + b"{abcdef}" + bytes(16),
        "model.safetensors: not a valid safetensors file (Error while deserializing header: invalid JSON in header: key must be a string at line 1 column 2).",
    ),
]


@pytest.mark.parametrize("label, weights, message", MALFORMED, ids=[label for label, _, _ in MALFORMED])
def test_malformed_headers_are_refused_with_a_clear_message(model, api_client, tmp_path, _artifact_root, label, weights, message):
    response = upload_with_weights(api_client, write_full(tmp_path / "full"), weights)

    assert response.status_code == 400
    assert response.json()["error"] == {"code": "unsafe_input", "message": message, "fields": {}}
    assert (Blob.objects.count(), Checkpoint.objects.count()) == (0, 0)
