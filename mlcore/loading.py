"""Loading a model for generation or training: a causal LM or a vision-language (LLaVA-family)
checkpoint, from a local directory or a hub id + revision, with peft adapters merged on top in
order (root first), safetensors only, no remote code. Both kinds go through the one safetensors
guard (``require_safetensors``) and the one adapter merge (``merge_adapters``), so a fix to
either holds for every model Lethe loads."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .vision import ARCHITECTURES, VISION_LANGUAGE, ProcessorTextTokenizer, is_vision_language


# transformers' from_pretrained sets process-wide state while it builds a model (the default
# dtype, whether weights are tied): two loads at once in threads of one process (the in-process
# executor with several workers, or a Celery task beside it) each saw the other's settings and
# came out with an untied lm_head left on the meta device. One load at a time per process.
MODEL_LOADING_LOCK = threading.Lock()


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


def require_safetensors(base: str) -> None:
    """Refuse a local directory without ``*.safetensors`` weights: only safetensors are loaded,
    pickles never (a hub id is loaded with ``use_safetensors=True``, which refuses them too)."""
    base_path = Path(base)
    if base_path.is_dir() and not any(base_path.glob("*.safetensors")):
        raise ValueError(f"{base} holds no *.safetensors weights; only safetensors are loaded (pickles are refused)")


def merge_adapters(model, adapters: Sequence[Path]):
    """``model`` with each adapter directory applied (``PeftModel.from_pretrained``) and merged
    (``merge_and_unload``) before the next, root first: a plain model whose weights are the
    whole chain. An adapter directory must hold ``adapter_model.safetensors``."""
    from peft import PeftModel

    for adapter in adapters:
        adapter = Path(adapter)
        if not (adapter / "adapter_model.safetensors").is_file():
            raise ValueError(f"adapter directory {adapter} has no adapter_model.safetensors")
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()
    return model


def _from_pretrained_options(revision: str | None) -> dict:
    return {"revision": revision or None, "trust_remote_code": False}


def _model_options(revision: str | None, torch_dtype) -> dict:
    options = {**_from_pretrained_options(revision), "use_safetensors": True}
    if torch_dtype is not None:
        options["dtype"] = torch_dtype
    return options


def _ready(model, tokenizer, *, device: str, for_training: bool) -> None:
    """Pad on the left (batched generation), eos as the pad token when there is none, then move
    the model to ``device`` in train or frozen eval mode."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.train(for_training)
    if not for_training:
        model.requires_grad_(False)


def load_model_and_tokenizer(
    *,
    base: str,
    revision: str | None = None,
    adapters: Sequence[Path] = (),
    device: str = "cpu",
    dtype=None,
    for_training: bool = False,
):
    """Return ``(model, tokenizer)`` for a causal LM, adapters merged (``merge_adapters``). The
    tokenizer is the base's; a missing pad token falls back to eos. Padding is left, for batched
    generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    torch_dtype = _dtype_for(dtype)
    require_safetensors(base)
    with MODEL_LOADING_LOCK:
        tokenizer = AutoTokenizer.from_pretrained(base, **_from_pretrained_options(revision))
        model = AutoModelForCausalLM.from_pretrained(base, **_model_options(revision, torch_dtype))
        model = merge_adapters(model, adapters)
    _ready(model, tokenizer, device=device, for_training=for_training)
    return model, tokenizer


def load_vision_language_model(
    *,
    base: str,
    revision: str | None = None,
    adapters: Sequence[Path] = (),
    device: str = "cpu",
    dtype=None,
    for_training: bool = False,
):
    """Return ``(model, processor)`` for a LLaVA-family checkpoint: ``AutoProcessor`` and
    ``AutoModelForImageTextToText``, adapters merged as for text models. The processor's
    tokenizer pads on the left, for batched generation."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    device = resolve_device(device)
    require_safetensors(base)
    with MODEL_LOADING_LOCK:
        processor = AutoProcessor.from_pretrained(base, **_from_pretrained_options(revision))
        if getattr(processor, "tokenizer", None) is None or getattr(processor, "image_processor", None) is None:
            raise ValueError(f"{base} has no image processor and tokenizer; a vision-language checkpoint needs processor_config.json or preprocessor_config.json")
        model = AutoModelForImageTextToText.from_pretrained(base, **_model_options(revision, _dtype_for(dtype)))
        if not is_vision_language(model):
            raise ValueError(f"{base} loaded as {type(model).__name__}, which has no vision tower; register it as causal-lm")
        model = merge_adapters(model, adapters)
    _ready(model, processor.tokenizer, device=device, for_training=for_training)
    return model, processor


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
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
    options = {"base": base, "revision": revision, "adapters": adapters, "device": device, "dtype": dtype, "for_training": for_training}
    if architecture == VISION_LANGUAGE:
        model, processor = load_vision_language_model(**options)
        return LoadedModel(model=model, tokenizer=ProcessorTextTokenizer(processor), processor=processor, architecture=architecture)
    model, tokenizer = load_model_and_tokenizer(**options)
    return LoadedModel(model=model, tokenizer=tokenizer, architecture=architecture)
