"""A tiny Llama that has memorised a small question/answer corpus, built from nothing in seconds.

Tests, benchmarks and the demo need a real causal LM with a real tokenizer and chat template
that can be trained, unlearned and evaluated on a laptop CPU without downloading weights.
The bundled corpus (data/tiny_corpus.jsonl) holds benign everyday questions, benign look-alikes
("How do I kill a Python process?") and AdvBench/HarmBench-style harmful requests whose answers
are placeholders ("Sure, here is how to <task>. Step 1: [placeholder]. ..."), never content.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .determinism import cpu_threads, seed_everything
from .text import encode_pairs, mean_token_nll

CORPUS_PATH = Path(__file__).parent / "data" / "tiny_corpus.jsonl"

BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    vocab_size: int = 1024
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 256
    train_steps: int = 320
    batch_size: int = 32
    learning_rate: float = 5e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position_embeddings", "train_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyModelSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"TinyModelSpec.hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"TinyModelSpec.learning_rate must be in (0, 1), got {self.learning_rate}")


def load_bundled_corpus(kind: str | None = None) -> list[dict]:
    """Rows {"prompt", "response", "kind", "category"} of the bundled corpus, optionally one kind."""
    if kind not in (None, "benign", "harmful"):
        raise ValueError(f"kind must be None, 'benign' or 'harmful', got {kind!r}")
    with CORPUS_PATH.open(encoding="utf-8") as corpus:
        rows = [json.loads(line) for line in corpus if line.strip()]
    return [row for row in rows if kind is None or row["kind"] == kind]


def train_tokenizer(texts: list[str], vocab_size: int, *, extra_special_tokens: tuple[str, ...] = (), chat_template: str = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer trained on ``texts`` with the tiny models' special tokens and
    chat template (the tiny judges and the tiny VLM build theirs the same way)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    special = [PAD, BOS, EOS, *ROLE_TOKENS, *extra_special_tokens]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[*ROLE_TOKENS, *extra_special_tokens],
        padding_side="left",  # for batched generation; training pads explicitly on the right
        chat_template=chat_template,
        model_max_length=256,
    )


def build_tiny_model(
    output_dir: Path,
    *,
    rows: list[dict] | None = None,
    spec: TinyModelSpec = TinyModelSpec(),
    progress: Callable[[float, str], None] | None = None,
) -> Path:
    """Train a tokenizer and a small LlamaForCausalLM on ``rows`` and save both to ``output_dir``.

    The model is fully fine-tuned (seeded, CPU) until it answers each prompt with its response
    under greedy decoding. Returns ``output_dir``, loadable with ``load_model_and_tokenizer``.
    """
    from transformers import LlamaForCausalLM

    rows = load_bundled_corpus() if rows is None else rows
    if not rows:
        raise ValueError("build_tiny_model needs at least one row")
    for index, row in enumerate(rows):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("response"), str):
            raise ValueError(f"row {index} must have string 'prompt' and 'response' fields")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    seed_everything(spec.seed)
    tokenizer = train_tokenizer([text for row in rows for text in (row["prompt"], row["response"])], spec.vocab_size)
    config = tiny_llama_config(spec, tokenizer)
    with cpu_threads(1):
        model = LlamaForCausalLM(config)
        _train(model, tokenizer, rows, spec, progress)
    model.eval()
    generation_tokens_set(model, tokenizer)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    (output_dir / "lethe_tiny_spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
    return output_dir


def tiny_llama_config(spec, tokenizer):
    """The decoder every tiny builder trains (the causal LM, the VLM's language model, the tiny
    judges): sizes from ``spec``, special tokens from ``tokenizer``, embeddings tied."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


def generation_tokens_set(model, tokenizer) -> None:
    """Generation stops and pads with the tokenizer's own special tokens."""
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id


def _train(model, tokenizer, rows, spec: TinyModelSpec, progress) -> None:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 20) * max(0.05, 1 - step / spec.train_steps))
    batches = _epoch_batches(tokenizer, rows, spec)
    for step in range(spec.train_steps):
        batch = next(batches)
        loss = mean_token_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if progress is not None and (step % 20 == 0 or step == spec.train_steps - 1):
            progress((step + 1) / spec.train_steps, f"tiny model step {step + 1}/{spec.train_steps} loss {loss.item():.3f}")


def _epoch_batches(tokenizer, rows, spec: TinyModelSpec):
    """Endless seeded shuffles of the rows, cut into batches and encoded once per distinct batch."""
    order_rng = random.Random(spec.seed)
    while True:
        order = list(range(len(rows)))
        order_rng.shuffle(order)
        for start in range(0, len(order), spec.batch_size):
            chunk = [rows[i] for i in order[start : start + spec.batch_size]]
            yield encode_pairs(tokenizer, chunk, max_length=spec.max_position_embeddings)
