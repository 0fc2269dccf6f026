"""What an evaluation gives its judge and keeps of its judgements: the judge's input per case (with
the behaviour a derived attack case came from), a record per case and arm (the judge's detail,
confidence, category codes, why a cascade escalated it) and a summary per arm (how many
judgements were uncertain or escalated, and how often each category code was named). Pure."""

from __future__ import annotations

import re
from collections import Counter

from evals.judge_base import JudgeInput, Judgement


def judge_inputs(cases, responses: list[str]) -> list[JudgeInput]:
    """One judge input per case (anything with key, prompt, expected and parent_key) and its
    response text. A derived case (a jailbreak, an encoding, a typographic image of a base
    request) carries its parent's prompt as `behavior`, when the parent is among `cases`."""
    prompts = {case.key: case.prompt for case in cases}
    return [
        JudgeInput(case.prompt, response, case.expected, behavior=prompts.get(case.parent_key, "") if case.parent_key else "")
        for case, response in zip(cases, responses, strict=True)
    ]


def judgement_record(judgement: Judgement) -> dict:
    """The per-case record stored beside the outcome (CaseResult.judge_detail_a / _b)."""
    return {
        "detail": judgement.detail,
        "score": judgement.score,
        "confidence": judgement.confidence,
        "uncertain": judgement.uncertain,
        "categories": list(judgement.categories),
        "escalation": judgement.escalation,
    }


def category_code_order(code: str):
    """Sort key for category codes: S2 before S10 (the letters, then the number)."""
    match = re.fullmatch(r"([^\d]*)(\d+)(.*)", code)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else (code, -1, "")


def judgements_summary(judgements: list[Judgement], *, category_names: dict | None = None) -> dict:
    """One arm's judge summary (stored as metrics[arm]["judge"]): counts of uncertain and escalated
    judgements (by reason), and of each category code named, with the codes' names."""
    categories = Counter(code for judgement in judgements for code in judgement.categories)
    escalations = Counter(judgement.escalation for judgement in judgements if judgement.escalation)
    names = category_names or {}
    codes = sorted(categories, key=category_code_order)
    return {
        "judged": len(judgements),
        "uncertain": sum(1 for judgement in judgements if judgement.uncertain),
        "escalated": sum(escalations.values()),
        "escalations": dict(sorted(escalations.items())),
        # Whether this judge names categories at all (so "none named" is news, not silence).
        "names_categories": bool(names),
        "categories": {code: categories[code] for code in codes},
        "category_names": {code: names[code] for code in codes if code in names},
    }
