"""Unlearning objectives: one small class per method, each with one loss and typed hyperparameters.

A method sees a ``StepInputs``: the forget batch, the retain batch (when the run has a retain
set), the mismatched-answer batch for ``yao``, and a ``Reference`` that gives the parent model's
logits or activations (LoRA: the same weights under ``disable_adapter()``). ``loss`` returns the
differentiable total under ``"loss"`` and every term apart (detached by the trainer) for the
loss curve; every method reports ``forget_nll`` because the stop rule watches it.
Formulas and references: docs/unlearning.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from .hyperparameters import HyperparameterError, TrainingConfig, bounded, bounded_strings, from_dict, to_dict
from mlcore.text import EncodedBatch, IGNORE_INDEX, mean_token_nll


@dataclass
class StepInputs:
    model: torch.nn.Module
    forget: EncodedBatch
    retain: EncodedBatch | None
    reference: "Reference"
    mismatch: EncodedBatch | None = None  # forget prompts with benign answers (yao)

    def forward(self, batch: EncodedBatch):
        return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)

    def forward_with_layer(self, batch: EncodedBatch, layer: int):
        """The model's outputs and decoder layer ``layer``'s own output (see ``layer_output``)."""
        return layer_output(self.model, batch, layer)


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of a causal LM or of a VLM's language model, through peft wrapping
    (``PeftModel`` and ``LoraModel`` pass ``get_decoder`` on to the wrapped model)."""
    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    layers = getattr(decoder, "layers", None)
    if isinstance(layers, torch.nn.ModuleList):
        return layers
    count = model.config.get_text_config().num_hidden_layers
    for name, module in model.named_modules():  # fallback: the text model's "layers" list
        if name.endswith("layers") and isinstance(module, torch.nn.ModuleList) and len(module) == count and "vision" not in name:
            return module
    raise ValueError("cannot find the decoder layers of this model")


@contextlib.contextmanager
def capture_layer_output(model, layer: int):
    """Capture decoder layer ``layer``'s output (the residual stream it writes) during a forward.

    A forward hook on the layer module itself, not ``hidden_states[layer + 1]``: at the last
    layer transformers puts the final norm's output there, not the layer's."""
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def layer_output(model, batch: EncodedBatch, layer: int):
    """``(outputs, hidden)``: the model's outputs and decoder layer ``layer``'s output."""
    with capture_layer_output(model, layer) as captured:
        outputs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return outputs, captured["hidden"]


class Reference:
    """The parent model's outputs, computed without gradients (see trainer for how)."""

    def logits(self, batch: EncodedBatch) -> torch.Tensor:
        raise NotImplementedError

    def hidden_state(self, batch: EncodedBatch, layer: int) -> torch.Tensor:
        raise NotImplementedError


def real_token_kl(reference_logits: torch.Tensor, logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """KL(reference || model) of next-token distributions, averaged over non-padding positions."""
    mask = (batch.attention_mask[:, 1:] * batch.attention_mask[:, :-1]).bool()
    reference_logprobs = torch.log_softmax(reference_logits[:, :-1, :].float(), dim=-1)[mask]
    model_logprobs = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)[mask]
    return F.kl_div(model_logprobs, reference_logprobs, log_target=True, reduction="batchmean")


def answer_logprob_sum(logits: torch.Tensor, batch: EncodedBatch) -> torch.Tensor:
    """log p(y|x) per sequence: the sum over answer tokens, shape (batch,)."""
    targets = batch.labels[:, 1:]
    token_nll = F.cross_entropy(logits[:, :-1, :].float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none")
    return -token_nll.view(targets.shape).sum(-1)


def answer_lengths(batch: EncodedBatch) -> torch.Tensor:
    return batch.answer_mask.sum(-1).clamp(min=1)


class Method:
    name: ClassVar[str]
    params_class: ClassVar[type]
    needs_retain: ClassVar[bool] = False
    uses_reference: ClassVar[bool] = False
    uses_mismatch: ClassVar[bool] = False

    def __init__(self, params):
        self.params = params

    def loss(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        raise NotImplementedError


# -- gradient ascent ------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientAscentParams:
    pass


class GradientAscent(Method):
    """Minimise -NLL of the forget answers (Yao et al. 2023; Jang et al. 2023)."""

    name = "gradient_ascent"
    params_class = GradientAscentParams

    def loss(self, inputs):
        forget_nll = mean_token_nll(inputs.forward(inputs.forget).logits, inputs.forget)
        return {"loss": -forget_nll, "forget_nll": forget_nll}


# -- gradient difference --------------------------------------------------------------------


@dataclass(frozen=True)
class GradientDifferenceParams:
    gamma: float = bounded(1.0, 0, 100, low_open=True)  # weight of the ascent on forget
    alpha: float = bounded(1.0, 0, 100)  # weight of the NLL on retain


class GradientDifference(Method):
    """Gradient ascent on forget plus NLL on retain (Liu et al. 2022; Maini et al. 2024)."""

    name = "gradient_difference"
    params_class = GradientDifferenceParams
    needs_retain = True

    def loss(self, inputs):
        forget_nll = mean_token_nll(inputs.forward(inputs.forget).logits, inputs.forget)
        retain_nll = mean_token_nll(inputs.forward(inputs.retain).logits, inputs.retain)
        return {"loss": -self.params.gamma * forget_nll + self.params.alpha * retain_nll, "forget_nll": forget_nll, "retain_nll": retain_nll}


# -- KL -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KLParams:
    gamma: float = bounded(1.0, 0, 100, low_open=True)  # weight of the ascent on forget
    alpha: float = bounded(1.0, 0, 100)  # weight of KL(reference || model) on retain


class KLMinimisation(Method):
    """Gradient ascent on forget plus KL(reference || model) on retain tokens."""

    name = "kl"
    params_class = KLParams
    needs_retain = True
    uses_reference = True

    def loss(self, inputs):
        forget_nll = mean_token_nll(inputs.forward(inputs.forget).logits, inputs.forget)
        retain_logits = inputs.forward(inputs.retain).logits
        retain_kl = real_token_kl(inputs.reference.logits(inputs.retain), retain_logits, inputs.retain)
        return {"loss": -self.params.gamma * forget_nll + self.params.alpha * retain_kl, "forget_nll": forget_nll, "retain_kl": retain_kl}


# -- NPO ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NPOParams:
    beta: float = bounded(0.1, 0, 10, low_open=True)
    alpha: float = bounded(1.0, 0, 100)  # weight of the retain NLL (used when a retain set is given)


class NPO(Method):
    """Negative preference optimisation (Zhang et al. 2024):
    -(2/beta) E_F[log sigmoid(-beta (log p(y|x) - log p_ref(y|x)))] + alpha NLL_R."""

    name = "npo"
    params_class = NPOParams
    uses_reference = True

    def loss(self, inputs):
        beta = self.params.beta
        forget_logits = inputs.forward(inputs.forget).logits
        log_ratio = answer_logprob_sum(forget_logits, inputs.forget) - answer_logprob_sum(inputs.reference.logits(inputs.forget), inputs.forget)
        npo = -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()
        terms = {"npo": npo, "forget_nll": mean_token_nll(forget_logits, inputs.forget)}
        total = npo
        if inputs.retain is not None:
            terms["retain_nll"] = mean_token_nll(inputs.forward(inputs.retain).logits, inputs.retain)
            total = total + self.params.alpha * terms["retain_nll"]
        return {"loss": total, **terms}


# -- SimNPO ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimNPOParams:
    beta: float = bounded(2.5, 0, 100, low_open=True)
    gamma: float = bounded(0.0, 0, 100)  # reward margin
    alpha: float = bounded(1.0, 0, 100)  # weight of the retain NLL (used when a retain set is given)


class SimNPO(Method):
    """Reference-free, length-normalised NPO (Fan et al. 2024):
    -(2/beta) E_F[log sigmoid(-(beta/|y|) log p(y|x) - gamma)] + alpha NLL_R."""

    name = "simnpo"
    params_class = SimNPOParams

    def loss(self, inputs):
        beta, gamma = self.params.beta, self.params.gamma
        forget_logits = inputs.forward(inputs.forget).logits
        normalised = answer_logprob_sum(forget_logits, inputs.forget) / answer_lengths(inputs.forget)
        simnpo = -(2.0 / beta) * F.logsigmoid(-beta * normalised - gamma).mean()
        # forget_nll token-weighted as every other method logs it (the stop rule compares them).
        terms = {"simnpo": simnpo, "forget_nll": mean_token_nll(forget_logits, inputs.forget)}
        total = simnpo
        if inputs.retain is not None:
            terms["retain_nll"] = mean_token_nll(inputs.forward(inputs.retain).logits, inputs.retain)
            total = total + self.params.alpha * terms["retain_nll"]
        return {"loss": total, **terms}


# -- Yao et al. 2023 ------------------------------------------------------------------------


@dataclass(frozen=True)
class YaoParams:
    forget_weight: float = bounded(0.5, 0, 100, low_open=True)  # gradient ascent on F
    mismatch_weight: float = bounded(1.0, 0, 100)  # NLL of benign answers to F prompts
    retain_weight: float = bounded(1.0, 0, 100)  # KL(reference || model) on R
    # Benign answers used as the mismatched targets; None: the retain set's answers shuffled
    # with the seed. Safe deflections ("I can't help with that.") are benign answers too.
    mismatch_answers: list[str] | None = bounded_strings(lambda: None, max_items=10_000, max_chars=10_000)

    def check(self):
        if self.mismatch_answers is not None and not [answer for answer in self.mismatch_answers if answer.strip()]:
            raise HyperparameterError("mismatch_answers", "must hold at least one non-empty answer (or be null)")


class Yao(Method):
    """Large Language Model Unlearning (Yao et al. 2023), the objective Chakraborty et al. 2024
    apply to the language model of a VLM: 0.5 GA on F + 1 NLL(mismatch) + 1 KL on R."""

    name = "yao"
    params_class = YaoParams
    needs_retain = True
    uses_reference = True
    uses_mismatch = True

    def loss(self, inputs):
        p = self.params
        forget_nll = mean_token_nll(inputs.forward(inputs.forget).logits, inputs.forget)
        mismatch_nll = mean_token_nll(inputs.forward(inputs.mismatch).logits, inputs.mismatch)
        retain_logits = inputs.forward(inputs.retain).logits
        retain_kl = real_token_kl(inputs.reference.logits(inputs.retain), retain_logits, inputs.retain)
        total = -p.forget_weight * forget_nll + p.mismatch_weight * mismatch_nll + p.retain_weight * retain_kl
        return {"loss": total, "forget_nll": forget_nll, "mismatch_nll": mismatch_nll, "retain_kl": retain_kl}


# -- RMU ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RMUParams:
    # Decoder layer (0-based) whose output is steered; None: the middle layer.
    layer: int | None = bounded(None, 0, 1000)
    steering_coefficient: float = bounded(6.5, 0, 10_000, low_open=True)  # c
    alpha: float = bounded(100.0, 0, 100_000)  # weight of keeping retain activations


def masked_mean_squared_distance(hidden: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens of the mean squared difference across hidden units."""
    per_token = (hidden.float() - target.float()).pow(2).mean(-1)
    mask = attention_mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


class RMU(Method):
    """Representation misdirection (Li et al. 2024, WMDP): push layer-L activations on forget
    text toward c * u (u a fixed random unit vector from the seed), keep them on retain text."""

    name = "rmu"
    params_class = RMUParams
    needs_retain = True
    uses_reference = True

    def __init__(self, params):
        super().__init__(params)
        self._control: torch.Tensor | None = None

    def prepare(self, model, *, seed: int):
        """Fix the layer and the random control vector for this model and seed."""
        text_config = model.config.get_text_config()
        num_layers = text_config.num_hidden_layers
        layer = num_layers // 2 if self.params.layer is None else self.params.layer
        if not 0 <= layer < num_layers:
            raise HyperparameterError("layer", f"must be in [0, {num_layers - 1}] for this model, got {layer}")
        self.layer = layer
        generator = torch.Generator().manual_seed(seed)
        direction = torch.rand(text_config.hidden_size, generator=generator)
        self._control = self.params.steering_coefficient * direction / direction.norm()

    def loss(self, inputs):
        if self._control is None:
            raise RuntimeError("RMU.prepare(model, seed=...) must be called before loss()")
        # The chosen decoder layer's own output, read by a hook (also at the last layer).
        forget_out, forget_hidden = inputs.forward_with_layer(inputs.forget, self.layer)
        control = self._control.to(forget_hidden.device)
        forget_term = masked_mean_squared_distance(forget_hidden, control.expand_as(forget_hidden), inputs.forget.attention_mask)
        retain_hidden = inputs.forward_with_layer(inputs.retain, self.layer)[1]
        retain_term = masked_mean_squared_distance(retain_hidden, inputs.reference.hidden_state(inputs.retain, self.layer), inputs.retain.attention_mask)
        return {
            "loss": forget_term + self.params.alpha * retain_term,
            "forget_steering": forget_term,
            "retain_activation": retain_term,
            "forget_nll": mean_token_nll(forget_out.logits, inputs.forget),
        }


METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (GradientAscent, GradientDifference, KLMinimisation, NPO, SimNPO, Yao, RMU)}


@dataclass(frozen=True)
class ResolvedHyperparameters:
    method: str
    training: TrainingConfig
    method_params: object = field(default=None)

    def as_dict(self) -> dict:
        """Every value, defaults filled in: what is stored on the run and the checkpoint."""
        return {**to_dict(self.training), **to_dict(self.method_params)}


def hyperparameters_resolve(method: str, raw: dict | None) -> ResolvedHyperparameters:
    """Split a flat hyperparameter dict into training and method parts, validating each field.

    Raises ``HyperparameterError`` naming the field and its allowed range, or ``ValueError``
    for an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown unlearning method {method!r}; expected one of {', '.join(sorted(METHODS))}")
    if raw is not None and not isinstance(raw, dict):
        raise HyperparameterError("hyperparameters", "must be an object")
    raw = dict(raw or {})
    method_class = METHODS[method]
    training_names = set(TrainingConfig.__dataclass_fields__)
    method_names = set(method_class.params_class.__dataclass_fields__)
    unknown = sorted(set(raw) - training_names - method_names)
    if unknown:
        raise HyperparameterError(unknown[0], f"unknown hyperparameter for {method}; expected one of {', '.join(sorted(training_names | method_names))}")
    training = from_dict(TrainingConfig, {k: v for k, v in raw.items() if k in training_names})
    method_params = from_dict(method_class.params_class, {k: v for k, v in raw.items() if k in method_names})
    return ResolvedHyperparameters(method=method, training=training, method_params=method_params)
