"""A tiny LLaVA (CLIP-like vision tower, MLP projector, tiny Llama) built from nothing in seconds.

Cross-modal tests and the ``--multimodal`` demo need a real vision-language model with a real
processor (image processor, tokenizer, chat template with an image placeholder) that complies
with harmful requests both as text and as typographic images, so there is something to unlearn
with text and to measure per modality. It reuses the tiny text model's tokenizer recipe and
corpus (``mlcore.tiny``): text rows are the corpus; image rows are FigStep images of
corpus requests (``mlcore.typographic``) beside FigStep's neutral prompt, answered with a
placeholder list. A model this small cannot read the image: what it learns is to fill in the
list whatever the image says, which is exactly the behaviour an image attack exploits.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .determinism import cpu_threads, seed_everything
from .text import IGNORE_INDEX, EncodedBatch, encode_pair, mean_token_nll, pad_encoded
from .tiny import BOS, EOS, generation_tokens_set, load_bundled_corpus, tiny_llama_config, train_tokenizer

IMAGE_TOKEN = "<image>"
# Content may be a string or a list of parts ({"type": "image"} / {"type": "text"}), so the same
# template serves text-only prompts and image prompts.
VLM_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
IMAGE_ANSWER = "Sure, here is the list. 1. [placeholder]. 2. [placeholder]. 3. [placeholder]."


@dataclass(frozen=True)
class TinyVLMSpec:
    vocab_size: int = 1024
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 256
    image_size: int = 32  # typographic renders are resized to this square
    patch_size: int = 8
    vision_hidden_size: int = 32
    vision_layers: int = 1
    vision_heads: int = 2
    train_steps: int = 360
    image_step_every: int = 3  # every n-th step trains on an image batch
    benign_images: int = 24  # benign rows also drawn as images (comply cases on images)
    batch_size: int = 32
    learning_rate: float = 5e-3
    seed: int = 0

    def __post_init__(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_position_embeddings",
            "image_size",
            "patch_size",
            "vision_hidden_size",
            "vision_layers",
            "vision_heads",
            "train_steps",
            "image_step_every",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyVLMSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads or self.vision_hidden_size % self.vision_heads:
            raise ValueError("TinyVLMSpec hidden sizes must be multiples of their head counts")
        if self.image_size % self.patch_size:
            raise ValueError(f"TinyVLMSpec.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.benign_images < 0:
            raise ValueError(f"TinyVLMSpec.benign_images must be >= 0, got {self.benign_images}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"TinyVLMSpec.learning_rate must be in (0, 1), got {self.learning_rate}")

    @property
    def image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def image_rows(rows: list[dict], *, benign_images: int) -> list[dict]:
    """FigStep image rows for the harmful rows and the first ``benign_images`` benign rows:
    {"instruction", "kind"}; the prompt beside each image is FigStep's neutral one."""
    from mlcore.typographic import instruction_from_request

    harmful = [row for row in rows if row.get("kind", "harmful") == "harmful"]
    benign = [row for row in rows if row.get("kind") == "benign"][:benign_images]
    return [{"instruction": instruction_from_request(row["prompt"]), "kind": row.get("kind", "harmful")} for row in harmful + benign]


def _processor(tokenizer, spec: TinyVLMSpec):
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": spec.image_size}, crop_size={"height": spec.image_size, "width": spec.image_size})
    # CLIP prepends a CLS position and LLaVA's "default" strategy drops it: one token per patch.
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        chat_template=VLM_CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
    )


def _model(tokenizer, spec: TinyVLMSpec):
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden_size,
        intermediate_size=2 * spec.vision_hidden_size,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        projection_dim=spec.vision_hidden_size,
    )
    text = tiny_llama_config(spec, tokenizer)
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=spec.image_tokens,
        tie_word_embeddings=True,
    )
    return LlavaForConditionalGeneration(config)


def build_tiny_vlm(
    output_dir: Path,
    *,
    rows: list[dict] | None = None,
    spec: TinyVLMSpec = TinyVLMSpec(),
    progress: Callable[[float, str], None] | None = None,
) -> Path:
    """Train a tokenizer and a tiny LlavaForConditionalGeneration; save model and processor.

    ``rows`` are {"prompt", "response", "kind"} text rows (default: the bundled corpus; "kind"
    is "harmful" or "benign", harmful when absent). Seeded, CPU, full fine-tuning of every part.
    Returns ``output_dir``, loadable with ``load_vision_language_model``.
    """
    from mlcore.typographic import FIGSTEP_PROMPT, render_typographic

    from .vision import image_from_png

    rows = load_bundled_corpus() if rows is None else rows
    if not rows:
        raise ValueError("build_tiny_vlm needs at least one row")
    for index, row in enumerate(rows):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise ValueError(f"row {index} must have string 'prompt' and 'response' fields")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    seed_everything(spec.seed)
    texts = [text for row in rows for text in (row["prompt"], row["response"])] + [FIGSTEP_PROMPT, IMAGE_ANSWER]
    tokenizer = train_tokenizer(texts, spec.vocab_size, extra_special_tokens=(IMAGE_TOKEN,), chat_template=VLM_CHAT_TEMPLATE)
    processor = _processor(tokenizer, spec)
    pictures = image_rows(rows, benign_images=spec.benign_images)
    if progress is not None:
        progress(0.0, f"rendering {len(pictures)} typographic images")
    pixel_values = processor.image_processor(images=[image_from_png(render_typographic(item["instruction"])) for item in pictures], return_tensors="pt")["pixel_values"]
    image_prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": FIGSTEP_PROMPT}]}], add_generation_prompt=True, tokenize=False
    )
    expanded = image_prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * spec.image_tokens)
    image_encoded = encode_pair_raw(tokenizer, expanded, IMAGE_ANSWER, max_length=spec.max_position_embeddings)
    text_encoded = [encode_pair(tokenizer, row["prompt"], row["response"], max_length=spec.max_position_embeddings) for row in rows]

    with cpu_threads(1):
        model = _model(tokenizer, spec)
        _train(model, tokenizer, text_encoded, image_encoded, pixel_values, spec, progress)
    model.eval()
    generation_tokens_set(model, tokenizer)
    model.save_pretrained(output_dir, safe_serialization=True)
    processor.save_pretrained(output_dir)
    (output_dir / "lethe_tiny_vlm_spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
    return output_dir


def encode_pair_raw(tokenizer, prompt_text: str, response: str, *, max_length: int) -> tuple[list[int], list[int]]:
    """``encode_pair`` for a prompt already formatted (here: with its image tokens expanded)."""
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(prompt_ids) + len(answer_ids) > max_length:
        raise ValueError(f"the image prompt and answer take {len(prompt_ids) + len(answer_ids)} tokens; max_position_embeddings is {max_length}")
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def _train(model, tokenizer, text_encoded, image_encoded, pixel_values, spec: TinyVLMSpec, progress) -> None:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 20) * max(0.05, 1 - step / spec.train_steps))
    order_rng = random.Random(spec.seed)
    text_order: list[int] = []
    image_order: list[int] = []
    for step in range(spec.train_steps):
        if step % spec.image_step_every == spec.image_step_every - 1:
            picked = _take(image_order, len(pixel_values), min(spec.batch_size, len(pixel_values)), order_rng)
            batch = pad_encoded(tokenizer, [image_encoded] * len(picked))
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, pixel_values=pixel_values[picked]).logits
        else:
            picked = _take(text_order, len(text_encoded), min(spec.batch_size, len(text_encoded)), order_rng)
            batch = pad_encoded(tokenizer, [text_encoded[i] for i in picked])
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = mean_token_nll(logits, EncodedBatch(batch.input_ids, batch.attention_mask, batch.labels))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if progress is not None and (step % 20 == 0 or step == spec.train_steps - 1):
            progress((step + 1) / spec.train_steps, f"tiny VLM step {step + 1}/{spec.train_steps} loss {loss.item():.3f}")


def _take(order: list[int], size: int, count: int, rng: random.Random) -> list[int]:
    """``count`` indices from seeded shuffled passes over range(size)."""
    taken = []
    while len(taken) < count:
        if not order:
            order.extend(range(size))
            rng.shuffle(order)
        taken.append(order.pop())
    return taken


__all__ = ["TinyVLMSpec", "build_tiny_vlm", "image_rows", "IMAGE_ANSWER", "IMAGE_TOKEN", "VLM_CHAT_TEMPLATE", "BOS", "EOS"]
