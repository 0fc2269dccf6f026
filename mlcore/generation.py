"""Batched generation and held-out perplexity for one model. Pure: no Django imports.

Prompts are formatted exactly as the unlearning engine formats them (chat template when the
tokenizer has one, else its plain template), sorted by token length into buckets so a batch
pads little, left-padded so every row's new tokens start at the same column, and decoded with
the KV cache; greedy unless the config asks for sampling. Vision-language models
(``generate_vision_language_responses``) answer image cases through their processor and text
cases through the same model without an image.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from mlcore.text import PLAIN_TEMPLATE, answer_token_logprobs, encode_pairs, format_prompt


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 64
    batch_size: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    max_prompt_tokens: int = 1024  # longer prompts keep their right end (the request itself)

    # Every setting is bounded: an evaluation's config comes from its author, and one without a
    # ceiling (a 10^9-token prompt window, a temperature of 1e300) would only fail, or fill the
    # GPU, once the run is under way.
    BOUNDS = {
        "max_new_tokens": (1, 4096),
        "batch_size": (1, 1024),
        "max_prompt_tokens": (1, 32768),
        "temperature": (0.0, 100.0),  # lower end open
        "top_p": (0.0, 1.0),  # lower end open
    }

    def __post_init__(self):
        for name in ("max_new_tokens", "batch_size", "max_prompt_tokens"):
            value = getattr(self, name)
            low, high = self.BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"{name} must be in {low}..{high}, got {value!r}")
        if not isinstance(self.do_sample, bool):
            raise ValueError(f"do_sample must be true or false, got {self.do_sample!r}")
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            low, high = self.BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if not low < value <= high:
                raise ValueError(f"{name} must be in ({low:g}, {high:g}], got {value!r}")

    @classmethod
    def from_dict(cls, data: dict | None) -> "GenerationConfig":
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown generation settings {sorted(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**data)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Generated:
    text: str
    latency_ms: float  # the batch's wall time shared equally among its rows
    new_tokens: int


def apply_prompt_template(prompt: str, template: str | None) -> tuple[str | None, str]:
    """(system prompt, user message) for a case under a prompt version's template.

    A template with a `{prompt}` or `{input}` variable wraps the case; any other template is a
    system prompt.
    """
    if not template:
        return None, prompt
    if "{prompt}" in template or "{input}" in template:
        # replace(), not format(): templates may contain other braces (JSON examples).
        return None, template.replace("{prompt}", prompt).replace("{input}", prompt)
    return template, prompt


def render_prompt(tokenizer, prompt: str, template: str | None = None) -> str:
    system, user = apply_prompt_template(prompt, template)
    if system is None:
        return format_prompt(tokenizer, user)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return f"{system}\n\n{PLAIN_TEMPLATE.format(prompt=user)}"


def padding_id(tokenizer) -> int:
    """The token batches are padded with: the pad token, else eos."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    raise ValueError("the tokenizer has neither a pad nor an eos token; batched generation needs one to pad with")


def left_padded(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) for token rows padded on the left, so every row ends at the last column."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, width - len(ids) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def generate_responses(
    model,
    tokenizer,
    prompts: list[str],
    *,
    config: GenerationConfig = GenerationConfig(),
    template: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> list[Generated]:
    """One response per prompt, in the input order."""
    if not prompts:
        return []
    pad_id = padding_id(tokenizer)
    device = next(model.parameters()).device
    encoded = [tokenizer(render_prompt(tokenizer, prompt, template), add_special_tokens=False)["input_ids"][-config.max_prompt_tokens :] for prompt in prompts]
    # Longest first: the first batch shows at once whether the largest one fits in memory.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[Generated | None] = [None] * len(prompts)
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p} if config.do_sample else {"do_sample": False}
    done = 0
    model.eval()
    for start in range(0, len(order), config.batch_size):
        if check_cancelled is not None:
            check_cancelled()
        indices = order[start : start + config.batch_size]
        input_ids, attention_mask = left_padded([encoded[i] for i in indices], pad_id, device)
        began = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=config.max_new_tokens,
                use_cache=True,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                **sampling,
            )
        elapsed_ms = (time.perf_counter() - began) * 1000 / len(indices)
        new_tokens = output[:, input_ids.shape[1] :].tolist()
        for i, tokens in zip(indices, new_tokens, strict=True):
            if tokenizer.eos_token_id is not None and tokenizer.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tokenizer.eos_token_id)]
            tokens = [t for t in tokens if t != pad_id]
            results[i] = Generated(tokenizer.decode(tokens, skip_special_tokens=True).strip(), elapsed_ms, len(tokens))
        done += len(indices)
        if progress is not None:
            progress(done, len(prompts))
    return results


def render_image_prompt(processor, prompt: str, template: str | None = None) -> str:
    """The text a vision-language model sees before answering an image case: the processor's chat
    template, the image placeholder before the user's text (LLaVA's layout), the prompt
    version's system prompt or wrapper applied as for text."""
    from mlcore.vision import as_content_parts

    system, user = apply_prompt_template(prompt, template)
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": user}]
    if not getattr(processor, "chat_template", None):
        raise ValueError("the processor has no chat template; image prompts need one to place the image")
    return processor.apply_chat_template(as_content_parts(messages, image_first_user_turn=True), tokenize=False, add_generation_prompt=True)


def generate_vision_language_responses(
    model,
    processor,
    prompts: list[str],
    images: list[bytes | None],
    *,
    config: GenerationConfig = GenerationConfig(),
    template: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> list[Generated]:
    """One response per prompt on a vision-language model, in the input order.

    Prompts without an image go through the same model as text (``generate_responses`` with the
    processor's text side); prompts with a PNG image are rendered with the image placeholder,
    batched through the processor (which expands the placeholder into the image's tokens) with
    left padding, sorted by length. Image prompts are not truncated: cutting from the left could
    cut the image tokens.
    """
    from mlcore.vision import ProcessorTextTokenizer, image_from_png

    if len(prompts) != len(images):
        raise ValueError(f"{len(prompts)} prompts but {len(images)} images; pass None for text-only prompts")
    text_indices = [i for i, image in enumerate(images) if image is None]
    image_indices = [i for i, image in enumerate(images) if image is not None]
    results: list[Generated | None] = [None] * len(prompts)
    text_tokenizer = ProcessorTextTokenizer(processor)

    def text_progress(done, _total):
        if progress is not None:
            progress(done, len(prompts))

    for i, generated in zip(
        text_indices,
        generate_responses(
            model,
            text_tokenizer,
            [prompts[i] for i in text_indices],
            config=config,
            template=template,
            seed=seed,
            progress=text_progress,
            check_cancelled=check_cancelled,
        ),
        strict=True,
    ):
        results[i] = generated
    if not image_indices:
        return results

    tokenizer = processor.tokenizer
    pad_id = padding_id(tokenizer)
    device = next(model.parameters()).device
    rendered = {i: render_image_prompt(processor, prompts[i], template) for i in image_indices}
    lengths = {i: len(tokenizer(rendered[i], add_special_tokens=False)["input_ids"]) for i in image_indices}
    order = sorted(image_indices, key=lambda i: -lengths[i])
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p} if config.do_sample else {"do_sample": False}
    done = len(text_indices)
    model.eval()
    for start in range(0, len(order), config.batch_size):
        if check_cancelled is not None:
            check_cancelled()
        indices = order[start : start + config.batch_size]
        inputs = processor(images=[image_from_png(images[i]) for i in indices], text=[rendered[i] for i in indices], padding=True, return_tensors="pt").to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        began = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=config.max_new_tokens,
                use_cache=True,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                **sampling,
            )
        elapsed_ms = (time.perf_counter() - began) * 1000 / len(indices)
        for i, tokens in zip(indices, output[:, inputs["input_ids"].shape[1] :].tolist(), strict=True):
            if tokenizer.eos_token_id is not None and tokenizer.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tokenizer.eos_token_id)]
            tokens = [t for t in tokens if t != pad_id]
            results[i] = Generated(tokenizer.decode(tokens, skip_special_tokens=True).strip(), elapsed_ms, len(tokens))
        done += len(indices)
        if progress is not None:
            progress(done, len(prompts))
    return results


def answer_negative_log_likelihoods(model, tokenizer, rows: list[dict], *, batch_size: int = 16, max_length: int = 256) -> list[tuple[float, int]]:
    """(sum of answer-token NLLs, answer token count) per {"prompt", "response"} row.

    The answer is scored after the prompt formatted as in training and generation, so utility
    measures the model answering benign questions, the way it is used.
    """
    device = next(model.parameters()).device
    results = []
    model.eval()
    for start in range(0, len(rows), batch_size):
        batch = encode_pairs(tokenizer, rows[start : start + batch_size], max_length=max_length).to(device)
        with torch.inference_mode():
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logprobs = answer_token_logprobs(logits, batch)
        results.extend((float(-total), int(count)) for total, count in zip(logprobs.sum(-1).tolist(), batch.answer_mask.sum(-1).tolist(), strict=True))
    return results
