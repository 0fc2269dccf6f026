"""Typed hyperparameters: dataclasses whose fields carry their allowed range, built from the
plain dicts that arrive over the API and are stored on runs and checkpoints."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range; ``field`` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def bounded(default, low=None, high=None, *, low_open=False, high_open=False):
    """A field whose value must lie in [low, high] (an open end with ``*_open``)."""
    return field(default=default, metadata={"range": (low, high, low_open, high_open)})


def choice(default, *choices):
    return field(default=default, metadata={"choices": choices})


def bounded_strings(default_factory, *, max_items, max_chars):
    """A list of strings of at most ``max_items`` items of at most ``max_chars`` characters each."""
    return field(default_factory=default_factory, metadata={"max_items": max_items, "max_chars": max_chars})


def _describe_range(low, high, low_open, high_open) -> str:
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def _coerce(name: str, value, annotation: str):
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise HyperparameterError(name, "must not be null")
    if annotation.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise HyperparameterError(name, f"must be an integer, got {value!r}")
        return value
    if annotation.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HyperparameterError(name, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise HyperparameterError(name, f"must be finite, got {value!r}")
        return float(value)
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise HyperparameterError(name, f"must be a string, got {value!r}")
        return value
    if annotation.startswith(("list[str]", "tuple[str")):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise HyperparameterError(name, f"must be a list of strings, got {value!r}")
        return list(value)
    raise TypeError(f"unsupported annotation {annotation!r} for {name}")  # a programming error


def from_dict(cls, raw: dict | None):
    """Build ``cls`` from ``raw``, checking each field's type and range; unknown keys are errors."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise HyperparameterError(unknown[0], f"unknown hyperparameter; expected one of {', '.join(sorted(fields))}")
    values = {}
    for name, spec in fields.items():
        if name not in raw:
            continue
        value = _coerce(name, raw[name], str(spec.type))
        if value is not None and "range" in spec.metadata:
            low, high, low_open, high_open = spec.metadata["range"]
            too_low = low is not None and (value <= low if low_open else value < low)
            too_high = high is not None and (value >= high if high_open else value > high)
            if too_low or too_high:
                raise HyperparameterError(name, f"must be in {_describe_range(low, high, low_open, high_open)}, got {value!r}")
        if value is not None and "max_items" in spec.metadata:
            max_items, max_chars = spec.metadata["max_items"], spec.metadata["max_chars"]
            if len(value) > max_items:
                raise HyperparameterError(name, f"must hold at most {max_items} items, got {len(value)}")
            if any(len(item) > max_chars for item in value):
                raise HyperparameterError(name, f"items must be at most {max_chars} characters long")
        if "choices" in spec.metadata and value not in spec.metadata["choices"]:
            raise HyperparameterError(name, f"must be one of {', '.join(spec.metadata['choices'])}, got {value!r}")
        values[name] = value
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        check()
    return instance


def to_dict(instance) -> dict:
    return dataclasses.asdict(instance)


@dataclass(frozen=True)
class TrainingConfig:
    """How the weights are trained, whatever the method (shared by every method)."""

    adapter: str = choice("lora", "lora", "full")  # "full": full fine-tuning, for small models
    lora_rank: int = bounded(8, 1, 1024)
    lora_alpha: float = bounded(16.0, 0, 4096, low_open=True)
    lora_dropout: float = bounded(0.0, 0, 1, high_open=True)
    target_modules: list[str] = bounded_strings(lambda: list(DEFAULT_TARGET_MODULES), max_items=256, max_chars=200)
    learning_rate: float = bounded(1e-4, 0, 1, low_open=True, high_open=True)
    weight_decay: float = bounded(0.0, 0, 1, high_open=True)
    lr_schedule: str = choice("constant", "constant", "linear")  # linear: warmup then decay to 0
    warmup_steps: int = bounded(0, 0, 100_000)
    max_steps: int = bounded(50, 1, 100_000)
    batch_size: int = bounded(4, 1, 4096)
    gradient_accumulation_steps: int = bounded(1, 1, 1024)
    max_length: int = bounded(256, 8, 65_536)
    max_grad_norm: float | None = bounded(1.0, 0, 1e6, low_open=True)
    # Gradient ascent diverges: stop once the forget NLL (mean per answer token) passes this.
    forget_loss_ceiling: float | None = bounded(15.0, 0, 10_000, low_open=True)

    def check(self):
        if not self.target_modules:
            raise HyperparameterError("target_modules", "must name at least one module")
        if self.warmup_steps > self.max_steps:
            raise HyperparameterError("warmup_steps", f"must be <= max_steps ({self.max_steps}), got {self.warmup_steps}")
