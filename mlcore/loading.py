"""Loading a model for generation or training: a local directory or a hub id + revision, with
peft adapters merged on top in order (root first), safetensors only, no remote code."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def resolve_device(setting: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else is kept."""
    import torch

    setting = (setting or "auto").strip()
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {setting!r} was asked for but no CUDA device is available")
    return setting


def _dtype_for(dtype):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return "auto"
    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    except KeyError:
        raise ValueError(f"dtype must be one of float32, float16, bfloat16, auto; got {dtype!r}") from None


def load_model_and_tokenizer(
    *,
    base: str,
    revision: str | None = None,
    adapters: Sequence[Path] = (),
    device: str = "cpu",
    dtype=None,
    for_training: bool = False,
):
    """Return ``(model, tokenizer)``.

    ``base`` is a local directory or a hub id (with ``revision``); each adapter directory is
    applied with ``PeftModel.from_pretrained`` and merged (``merge_and_unload``) before the next,
    so the result is a plain model whose weights are the whole chain. The tokenizer is the
    base's; a missing pad token falls back to eos. Padding is left, for batched generation.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    torch_dtype = _dtype_for(dtype)
    common = {"revision": revision or None, "trust_remote_code": False}
    base_path = Path(base)
    if base_path.is_dir() and not any(base_path.glob("*.safetensors")):
        raise ValueError(f"{base} holds no *.safetensors weights; only safetensors are loaded (pickles are refused)")
    tokenizer = AutoTokenizer.from_pretrained(base, **common)
    model_kwargs = {**common, "use_safetensors": True}
    if torch_dtype is not None:
        model_kwargs["dtype"] = torch_dtype
    model = AutoModelForCausalLM.from_pretrained(base, **model_kwargs)
    for adapter in adapters:
        adapter = Path(adapter)
        if not (adapter / "adapter_model.safetensors").is_file():
            raise ValueError(f"adapter directory {adapter} has no adapter_model.safetensors")
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.train(for_training)
    if not for_training:
        model.requires_grad_(False)
    return model, tokenizer


@dataclass
class LoadedModel:
    """A model ready to use: ``tokenizer`` formats and encodes text for it (for a
    vision-language model, the processor's text side); ``processor`` is set for
    vision-language models only."""

    model: object
    tokenizer: object
    processor: object = None
    architecture: str = "causal-lm"


def load_checkpoint_model(
    *,
    architecture: str,
    base: str,
    revision: str | None = None,
    adapters: Sequence[Path] = (),
    device: str = "cpu",
    dtype=None,
    for_training: bool = False,
) -> LoadedModel:
    """Load a ``causal-lm`` or ``vision-language`` checkpoint the one way each is loaded."""
    from .vision import ARCHITECTURES, VISION_LANGUAGE, ProcessorTextTokenizer, load_vision_language_model

    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    options = {"base": base, "revision": revision, "adapters": adapters, "device": device, "dtype": dtype, "for_training": for_training}
    if architecture == VISION_LANGUAGE:
        model, processor = load_vision_language_model(**options)
        return LoadedModel(model=model, tokenizer=ProcessorTextTokenizer(processor), processor=processor, architecture=architecture)
    model, tokenizer = load_model_and_tokenizer(**options)
    return LoadedModel(model=model, tokenizer=tokenizer, architecture=architecture)
