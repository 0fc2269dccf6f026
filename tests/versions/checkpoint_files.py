"""Builders of checkpoint folders on disk for tests: real safetensors, real JSON."""

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def write_full(directory, *, seed=0, extra=None):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    save_file({"w": rng.standard_normal((4, 4)).astype(np.float32)}, str(directory / "model.safetensors"))
    (directory / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    for name, content in (extra or {}).items():
        (directory / name).write_bytes(content)
    return directory


def write_adapter(directory, *, seed=0):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    save_file({"lora_A": rng.standard_normal((2, 4)).astype(np.float32)}, str(directory / "adapter_model.safetensors"))
    return directory


def pickled_bytes():
    return pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)


def files_of(directory):
    directory = Path(directory)
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*")) if p.is_file()}


def tar_of(folder):
    """The bytes of a tar holding ``folder``'s files under ``model/``, as a user would upload it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(Path(folder).iterdir()):
            archive.add(path, f"model/{path.name}")
    return buffer.getvalue()
