"""How a (prompt, response) pair becomes token ids: one formatting rule for training,
unlearning and evaluation, so a model is always asked questions the way it was taught.

A tokenizer with a chat template gets it (a single user turn, generation prompt appended).
Without one, the plain template ``PLAIN_TEMPLATE`` is used; it is documented in
docs/unlearning.md and is what evaluation must use for such tokenizers too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PLAIN_TEMPLATE = "### Question:\n{prompt}\n### Answer:\n"

# The index cross-entropy ignores: prompt and padding positions carry it in `labels`.
IGNORE_INDEX = -100


def format_prompt(tokenizer, prompt: str) -> str:
    """The text a model sees before it starts answering ``prompt``."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return PLAIN_TEMPLATE.format(prompt=prompt)


@dataclass
class EncodedBatch:
    """Right-padded token ids; ``labels`` holds the answer tokens only (IGNORE_INDEX elsewhere)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device) -> "EncodedBatch":
        return EncodedBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))

    @property
    def answer_mask(self) -> torch.Tensor:
        """True at positions whose *next* token is an answer token (aligned with shifted logits)."""
        return self.labels[:, 1:] != IGNORE_INDEX


def encode_pair(tokenizer, prompt: str, response: str, *, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + response + eos, and the labels (answer and eos only).

    Prompt and answer are tokenized apart so the boundary is exactly where generation starts.
    Long pairs are cut from the prompt's left end first, so the answer survives truncation.
    """
    prompt_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    answer_ids = answer_ids[: max_length - 1]
    prompt_ids = prompt_ids[-(max_length - len(answer_ids)) :]
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def encode_pairs(tokenizer, rows, *, max_length: int = 256) -> EncodedBatch:
    """Encode {"prompt", "response"} rows into one right-padded batch."""
    if not rows:
        raise ValueError("cannot encode an empty list of rows")
    return pad_encoded(tokenizer, [encode_pair(tokenizer, row["prompt"], row["response"], max_length=max_length) for row in rows])


def pad_encoded(tokenizer, encoded: list[tuple[list[int], list[int]]]) -> EncodedBatch:
    """Right-pad ``encode_pair`` results into one batch."""
    width = max(len(ids) for ids, _ in encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, row_labels) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
        labels[i, : len(ids)] = torch.tensor(row_labels)
    return EncodedBatch(input_ids, attention_mask, labels)


def answer_token_logprobs(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """Log-probability of each answer token, shape (batch, seq-1), zero where masked."""
    shifted_logits = logits[:, :-1, :].float()
    targets = batch.labels[:, 1:]
    token_nll = torch.nn.functional.cross_entropy(shifted_logits.reshape(-1, shifted_logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none")
    return -token_nll.view(targets.shape)


def sequence_nll(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """Mean over answer tokens of the negative log-likelihood, per sequence: shape (batch,)."""
    mask = batch.answer_mask
    return -answer_token_logprobs(logits, batch).sum(-1) / mask.sum(-1).clamp(min=1)


def mean_token_nll(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """Negative log-likelihood averaged over every answer token of the batch (a scalar)."""
    mask = batch.answer_mask
    return -answer_token_logprobs(logits, batch).sum() / mask.sum().clamp(min=1)
