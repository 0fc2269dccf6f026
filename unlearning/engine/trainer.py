"""The unlearning loop: batches from the forget/retain rows, one method's loss, LoRA (peft) or
full fine-tuning, gradient accumulation, a learning-rate schedule and the stop rules.

Progress reaches the caller through ``on_step(step, losses)`` after every optimizer step and
``check_cancelled()`` before each step (it raises to stop). A NaN or infinite loss raises
``NonFiniteLoss`` naming the step. Nothing here touches Django.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mlcore.determinism import cpu_threads, seed_everything
from .hyperparameters import HyperparameterError, TrainingConfig
from .methods import METHODS, Method, Reference, ResolvedHyperparameters, StepInputs, hyperparameters_resolve, layer_output
from mlcore.text import EncodedBatch, encode_pair, pad_encoded
from mlcore.vision import is_vision_language

StepCallback = Callable[[int, dict], None]


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, losses: dict):
        described = ", ".join(f"{name}={value:.4g}" for name, value in losses.items())
        super().__init__(f"the loss became non-finite at step {step} ({described}); lower the learning rate or check the data")
        self.step = step


@dataclass
class UnlearningOutcome:
    method: str
    hyperparameters: dict  # every value, defaults filled in
    seed: int
    kind: str  # "adapter" (LoRA) or "full"
    steps: int
    stop_reason: str  # "max_steps" or "forget_loss_ceiling"
    final_losses: dict[str, float]
    loss_curve: list[dict] = field(default_factory=list)
    weight_change: dict[str, float] = field(default_factory=dict)
    duration_seconds: float = 0.0


# -- the reference model ---------------------------------------------------------------------


class AdapterDisabledReference(Reference):
    """The parent is the same weights with the LoRA adapter switched off: no second copy."""

    def __init__(self, peft_model):
        self.model = peft_model

    @contextlib.contextmanager
    def _parent(self):
        with self.model.disable_adapter(), torch.no_grad():
            yield self.model

    def logits(self, batch):
        with self._parent() as parent:
            return parent(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    def hidden_state(self, batch, layer):
        with self._parent() as parent:
            return layer_output(parent, batch, layer)[1]


class FrozenCopyReference(Reference):
    """Full fine-tuning changes the weights themselves, so the parent must be kept: a frozen
    copy costs one more set of parameters in memory (documented; prefer LoRA for ref methods)."""

    def __init__(self, model):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def logits(self, batch):
        with torch.no_grad():
            return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    def hidden_state(self, batch, layer):
        with torch.no_grad():
            return layer_output(self.model, batch, layer)[1]


class NoReference(Reference):
    def logits(self, batch):
        raise RuntimeError("this method declared that it uses no reference model")

    hidden_state = logits


# -- batches -------------------------------------------------------------------------------


class RowSampler:
    """Endless seeded passes over rows, each pass shuffled anew."""

    def __init__(self, rows: Sequence[dict], rng: random.Random):
        self.rows = list(rows)
        self.rng = rng
        self._order: list[int] = []

    def take(self, count: int) -> list[dict]:
        taken = []
        while len(taken) < count:
            if not self._order:
                self._order = list(range(len(self.rows)))
                self.rng.shuffle(self._order)
            taken.append(self.rows[self._order.pop()])
        return taken


@dataclass
class BatchSource:
    tokenizer: object
    config: TrainingConfig
    forget: RowSampler
    retain: RowSampler | None
    mismatch_answers: RowSampler | None
    device: torch.device
    # Rows come round again every pass: each (prompt, response) is tokenized once.
    _cache: dict = field(default_factory=dict)

    def _encode(self, rows) -> EncodedBatch:
        encoded = []
        for row in rows:
            key = (row["prompt"], row["response"])
            if key not in self._cache:
                self._cache[key] = encode_pair(self.tokenizer, *key, max_length=self.config.max_length)
            encoded.append(self._cache[key])
        return pad_encoded(self.tokenizer, encoded).to(self.device)

    def next(self) -> tuple[EncodedBatch, EncodedBatch | None, EncodedBatch | None]:
        size = min(self.config.batch_size, len(self.forget.rows))
        forget_rows = self.forget.take(size)
        retain = self._encode(self.retain.take(self.config.batch_size)) if self.retain is not None else None
        mismatch = None
        if self.mismatch_answers is not None:
            answers = self.mismatch_answers.take(len(forget_rows))
            mismatch = self._encode([{"prompt": row["prompt"], "response": answer["response"]} for row, answer in zip(forget_rows, answers, strict=True)])
        return self._encode(forget_rows), retain, mismatch


# -- weights -------------------------------------------------------------------------------


def lora_weight_change(peft_model) -> dict[str, float]:
    """Per LoRA-wrapped module: the Frobenius norm of scale x B x A, the change it adds."""
    from peft.tuners.lora import LoraLayer

    changes = {}
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        for adapter_name in module.lora_A:
            delta = module.get_delta_weight(adapter_name)
            changes[_base_module_name(name)] = float(torch.linalg.matrix_norm(delta.float()).item())
    return dict(sorted(changes.items()))


def _base_module_name(name: str) -> str:
    # peft prefixes "base_model.model."; names should read as they do in the plain model.
    prefix = "base_model.model."
    return name[len(prefix) :] if name.startswith(prefix) else name


def full_weight_change(initial: dict[str, torch.Tensor], model) -> dict[str, float]:
    """Per module with trained parameters: the norm of W_new - W_old over its parameters."""
    squared: dict[str, float] = {}
    for name, parameter in model.named_parameters():
        if name not in initial:
            continue
        module_name = name.rsplit(".", 1)[0]
        delta = parameter.detach().float().cpu() - initial[name]
        squared[module_name] = squared.get(module_name, 0.0) + float(delta.pow(2).sum().item())
    return {name: math.sqrt(value) for name, value in sorted(squared.items())}


def _learning_rate_factor(config: TrainingConfig):
    def factor(step: int) -> float:  # step counts optimizer steps taken so far (0-based)
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "linear":
            remaining = config.max_steps - config.warmup_steps
            return max(0.0, 1.0 - (step - config.warmup_steps) / max(1, remaining))
        return 1.0

    return factor


def _attach_lora(model, config: TrainingConfig):
    """LoRA on ``config.target_modules``; on a vision-language model only inside the language
    model (a regex target), so the vision tower and projector are never wrapped or trained."""
    from peft import LoraConfig, get_peft_model

    from mlcore.vision import is_vision_language, language_model_module_names, language_model_target_regex

    vision_language = is_vision_language(model)
    if vision_language:
        present = language_model_module_names(model)
    else:
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [module for module in config.target_modules if module in present]
    if not targets:
        where = "the language model of this vision-language model" if vision_language else "this model"
        raise HyperparameterError("target_modules", f"none of {', '.join(config.target_modules)} exists in {where}")
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=language_model_target_regex(targets) if vision_language else targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


@contextlib.contextmanager
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


# -- the loop ------------------------------------------------------------------------------


def unlearn(
    model,
    tokenizer,
    *,
    method: str,
    hyperparameters: dict | ResolvedHyperparameters | None,
    forget_rows: Sequence[dict],
    retain_rows: Sequence[dict] | None = None,
    seed: int = 0,
    on_step: StepCallback | None = None,
    check_cancelled: Callable[[], None] | None = None,
    threads: int | None = 1,
):
    """Unlearn ``forget_rows`` from ``model``; returns ``(trained_model, UnlearningOutcome)``.

    The trained model is a peft model for LoRA (save it with ``save_unlearned``) or ``model``
    itself for full fine-tuning. ``threads`` bounds CPU intra-op threads for the run (1 gives
    byte-identical results on CPU and is the faster setting for small models); None leaves it.

    A vision-language ``model`` (with the processor's text side as ``tokenizer``) is trained on
    text-only batches with LoRA restricted to its language model: the vision tower and the
    projector keep their weights bit for bit.
    """
    resolved = hyperparameters if isinstance(hyperparameters, ResolvedHyperparameters) else hyperparameters_resolve(method, hyperparameters)
    config = resolved.training
    method_object: Method = METHODS[method](resolved.method_params)
    forget_rows = list(forget_rows)
    retain_rows = list(retain_rows or [])
    if not forget_rows:
        raise ValueError("the forget set is empty; unlearning needs at least one forget row")
    if method_object.needs_retain and not retain_rows:
        raise ValueError(f"method {method} needs a retain set")
    if config.adapter != "lora" and is_vision_language(model):
        raise HyperparameterError("adapter", "vision-language models are unlearned with LoRA on the language model only; use adapter 'lora'")

    started = time.monotonic()
    with cpu_threads(threads if model.device.type == "cpu" else None), _deterministic():
        seed_everything(seed)
        device = model.device
        initial_weights = None
        if config.adapter == "lora":
            trained = _attach_lora(model, config)
            reference = AdapterDisabledReference(trained) if method_object.uses_reference else NoReference()
        else:
            trained = model
            trained.requires_grad_(True)
            reference = FrozenCopyReference(trained) if method_object.uses_reference else NoReference()
            initial_weights = {name: p.detach().float().cpu().clone() for name, p in trained.named_parameters()}
        if hasattr(method_object, "prepare"):
            method_object.prepare(trained, seed=seed)
        trained.train()

        batches = BatchSource(
            tokenizer=tokenizer,
            config=config,
            forget=RowSampler(forget_rows, random.Random(f"{seed}:forget")),
            retain=RowSampler(retain_rows, random.Random(f"{seed}:retain")) if retain_rows else None,
            mismatch_answers=_mismatch_sampler(method_object, retain_rows, seed),
            device=device,
        )
        parameters = [p for p in trained.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _learning_rate_factor(config))

        loss_curve: list[dict] = []
        stop_reason = "max_steps"
        step = 0
        for step in range(1, config.max_steps + 1):
            if check_cancelled is not None:
                check_cancelled()
            losses = _optimizer_step(trained, method_object, reference, batches, optimizer, parameters, config, step)
            schedule.step()
            loss_curve.append({"step": step, **losses})
            if on_step is not None:
                on_step(step, losses)
            if config.forget_loss_ceiling is not None and losses["forget_nll"] > config.forget_loss_ceiling:
                stop_reason = "forget_loss_ceiling"
                break

        trained.eval()
        weight_change = lora_weight_change(trained) if config.adapter == "lora" else full_weight_change(initial_weights, trained)

    outcome = UnlearningOutcome(
        method=method,
        hyperparameters=resolved.as_dict(),
        seed=seed,
        kind="adapter" if config.adapter == "lora" else "full",
        steps=step,
        stop_reason=stop_reason,
        final_losses=dict(loss_curve[-1]) if loss_curve else {},
        loss_curve=loss_curve,
        weight_change=weight_change,
        duration_seconds=time.monotonic() - started,
    )
    outcome.final_losses.pop("step", None)
    return trained, outcome


def _mismatch_sampler(method_object: Method, retain_rows, seed) -> RowSampler | None:
    if not method_object.uses_mismatch:
        return None
    answers = method_object.params.mismatch_answers
    if answers is None:
        answers = [row["response"] for row in retain_rows]
    answers = [answer for answer in answers if answer.strip()]
    rng = random.Random(f"{seed}:mismatch")
    rng.shuffle(answers)
    return RowSampler([{"response": answer} for answer in answers], rng)


def _optimizer_step(model, method_object, reference, batches, optimizer, parameters, config, step) -> dict[str, float]:
    totals: dict[str, float] = {}
    for _ in range(config.gradient_accumulation_steps):
        forget, retain, mismatch = batches.next()
        terms = method_object.loss(StepInputs(model=model, forget=forget, retain=retain, reference=reference, mismatch=mismatch))
        values = {name: float(value.detach().item()) for name, value in terms.items()}
        if not all(math.isfinite(value) for value in values.values()):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss(step, values)
        (terms["loss"] / config.gradient_accumulation_steps).backward()
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + value / config.gradient_accumulation_steps
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return totals


def save_unlearned(model, tokenizer, output_dir: Path, *, kind: str) -> Path:
    """Write the result with ``save_pretrained`` (safetensors): the adapter alone for LoRA, the
    whole model and its tokenizer for full fine-tuning."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    if kind == "full":
        tokenizer.save_pretrained(output_dir)
    # peft writes a generic model card; the checkpoint's metadata is the record, not this file.
    (output_dir / "README.md").unlink(missing_ok=True)
    return output_dir
