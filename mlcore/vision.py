"""Vision-language checkpoints (LLaVA family): the text-only view of the processor that training
and text cases use, images from PNG bytes, and the LoRA targets that keep training inside the
language model. Loading is ``mlcore.loading.load_vision_language_model``. No Django.

The paper's workflow (Chakraborty et al. 2024) unlearns with text only: the vision tower and the
projector are never trained, so a text-only batch goes through the same model without an image.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

VISION_LANGUAGE = "vision-language"
CAUSAL_LM = "causal-lm"
ARCHITECTURES = (CAUSAL_LM, VISION_LANGUAGE)


def is_vision_language(model) -> bool:
    """True for a model with a vision tower (its config has a ``vision_config``)."""
    config = getattr(model, "config", None)
    return getattr(config, "vision_config", None) is not None


def language_model_target_regex(module_names: Sequence[str]) -> str:
    """A peft ``target_modules`` regex matching ``module_names`` inside the language model only,
    e.g. ``.*language_model.*\\.(q_proj|v_proj)`` (peft full-matches it against module names)."""
    if not module_names:
        raise ValueError("at least one module name is needed")
    return rf".*language_model.*\.({'|'.join(re.escape(name) for name in module_names)})"


def language_model_module_names(model) -> set[str]:
    """Leaf names (e.g. ``q_proj``) of the modules inside the language model of a VLM."""
    return {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if ".language_model." in f".{name}."}


def frozen_parameter_names(model) -> list[str]:
    """Parameters of a VLM that textual unlearning must leave bit-identical: everything outside
    the language model and its output head (the vision tower and the projector)."""
    return [name for name, _ in model.named_parameters() if "language_model" not in name and not name.startswith("lm_head")]


class ProcessorTextTokenizer:
    """The processor's tokenizer, with prompts formatted by the processor's chat template.

    Processor templates take message content as a list of parts ({"type": "text", ...},
    {"type": "image"}); a text-only prompt becomes one text part. Everything else (calling it,
    ids, decoding) is the tokenizer's, so the text code paths (training batches, text cases,
    perplexity) work on a vision-language model unchanged.
    """

    def __init__(self, processor):
        self.processor = processor
        self.tokenizer = processor.tokenizer

    def __getattr__(self, name):  # only reached for names not defined here
        if name in ("processor", "tokenizer"):
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self.tokenizer(*args, **kwargs)

    def __len__(self):
        return len(self.tokenizer)

    @property
    def chat_template(self):
        return getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, messages, **kwargs):
        if not getattr(self.processor, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, **kwargs)
        return self.processor.apply_chat_template(as_content_parts(messages), **kwargs)


def as_content_parts(messages: list[dict], *, image_first_user_turn: bool = False) -> list[dict]:
    """Messages with string content turned into a list of parts; with ``image_first_user_turn``
    an image part is put before the text of the first user message (LLaVA's layout)."""
    converted, placed = [], False
    for message in messages:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        if image_first_user_turn and not placed and message["role"] == "user":
            parts = [{"type": "image"}, *parts]
            placed = True
        converted.append({**message, "content": parts})
    return converted


def image_from_png(data: bytes):
    """A PIL RGB image from PNG bytes (already verified against their blob hash by the caller)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format != "PNG":
            raise ValueError(f"expected a PNG image, got {image.format}")
        return image.convert("RGB")
