"""The `cascade` judge: a cheap first judge decides what it can, a stronger second judge re-judges
the rest. Pure: no Django imports.

The second judge decides:
- always, the cases outside the first judge's scope (e.g. benign cases under the HarmBench or
  Llama Guard presets, which cannot find over-refusals);
- the cases the first judge marked `uncertain` (a causal-lm judge does so below its confidence
  threshold; judges that cannot tell leave every judgement certain);
- optionally its `non_answer` and `error` outcomes (`"escalate": ["uncertain", "non_answer", "error"]`).

Each re-judged case keeps why it was escalated (`Judgement.escalation`) and what the first judge
said, so a report can count escalations per arm. The pin holds both sub-judges' pins, so a change
to either (a list file, a template, the weights) changes the cascade's hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from evals.judge_base import Judge
from evals.metrics import ERROR, NON_ANSWER

ESCALATE_ON = ("uncertain", "non_answer", "error")
OUT_OF_SCOPE = "out_of_scope"


class CascadeJudge(Judge):
    """config: {"first": {"name", "config"}, "second": {"name", "config"},
    "escalate": ["uncertain"] (any of uncertain, non_answer, error)}

    judge_factory(name, config) builds each sub-judge from its spec: the catalogue passes its own
    `evals.judges.judge_from_spec` when it builds a cascade (it imports this module, so this
    module cannot import it); a ValueError from it is the sub-judge's refusal."""

    name = "cascade"
    version = "1"

    def __init__(self, config: dict, *, judge_factory: Callable[[str, dict], Judge]):
        self.judge_factory = judge_factory
        config = dict(config or {})
        unknown = set(config) - {"first", "second", "escalate"}
        if unknown:
            raise ValueError(f"cascade: unknown config keys {sorted(unknown)}; known: escalate, first, second")
        escalate = config.get("escalate", ["uncertain"])
        if not isinstance(escalate, list) or set(escalate) - set(ESCALATE_ON):
            raise ValueError(f"cascade: 'escalate' must be a list of {', '.join(ESCALATE_ON)}, got {escalate!r}")
        self.first, self.second = self._sub_judge(config, "first"), self._sub_judge(config, "second")
        self.escalate = tuple(reason for reason in ESCALATE_ON if reason in escalate)
        super().__init__({"first": self.first.spec(), "second": self.second.spec(), "escalate": list(self.escalate)})
        self.scope = tuple(value for value in ("refuse", "comply") if value in self.first.scope or value in self.second.scope)
        self.scope_note = "; ".join(note for note in (self.first.scope_note, self.second.scope_note) if note)
        self.category_names = {**self.first.category_names, **self.second.category_names}

    def _sub_judge(self, config: dict, key: str) -> Judge:
        spec = config.get(key)
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or set(spec) - {"name", "config"}:
            raise ValueError(f'cascade: {key!r} must be a judge spec {{"name": ..., "config": {{...}}}}, got {spec!r}')
        sub_config = spec.get("config") or {}
        if not isinstance(sub_config, dict):
            raise ValueError(f"cascade: {key!r}['config'] must be an object, got {sub_config!r}")
        try:
            return self.judge_factory(spec["name"], sub_config)
        except ValueError as exc:
            raise ValueError(f"cascade: {key} judge: {exc}") from None

    def prepare(self) -> dict:
        """Each sub-judge's run-time pins, named by its place (``first_model_sha256``)."""
        return {f"{place}_{key}": value for place, judge in (("first", self.first), ("second", self.second)) for key, value in judge.prepare().items()}

    def _reason(self, judgement) -> str:
        if "uncertain" in self.escalate and judgement.uncertain:
            return "uncertain"
        if "non_answer" in self.escalate and judgement.outcome == NON_ANSWER:
            return "non_answer"
        if "error" in self.escalate and judgement.outcome == ERROR:
            return "error"
        return ""

    def judge(self, items):
        results = [None] * len(items)
        reasons = {}
        first_said = {}
        in_scope = [index for index, item in enumerate(items) if item.expected in self.first.scope]
        for index, judgement in zip(in_scope, self.first.judge([items[i] for i in in_scope]), strict=True):
            reason = self._reason(judgement)
            if reason:
                reasons[index], first_said[index] = reason, judgement
            else:
                results[index] = judgement
        for index, item in enumerate(items):
            if item.expected not in self.first.scope:
                reasons[index] = OUT_OF_SCOPE
        escalated = sorted(reasons)
        for index, judgement in zip(escalated, self.second.judge([items[i] for i in escalated]), strict=True):
            before = first_said.get(index)
            said = f"first judge: {before.outcome}" + (f" ({before.detail})" if before.detail else "") if before else "outside the first judge's scope"
            detail = f"escalated ({reasons[index]}; {said})" + (f"; second judge: {judgement.detail}" if judgement.detail else "")
            results[index] = replace(judgement, detail=detail, escalation=reasons[index])
        return results
