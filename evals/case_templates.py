"""A prompt version's ``{{ variables }}`` filled from each case, before generation.

A template may name fields of the case: ``{{ prompt }}`` (or ``{{ input }}``), ``{{ category }}``,
``{{ attack_family }}``, ``{{ modality }}``, ``{{ key }}``, ``{{ source }}``. Never the expected
outcome: the model must not be told what is being checked. A template naming ``{{ prompt }}`` is
a wrapper and becomes the user message itself; any other is a system prompt, filled per case, with
the case as the user message. A template without ``{{ }}`` is passed on as it is (the older
``{prompt}`` wrappers included). No Django imports.
"""

from __future__ import annotations

import re

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CASE_VARIABLES = ("prompt", "input", "category", "attack_family", "modality", "key", "source")


def template_variables(template: str | None) -> list[str]:
    return list(dict.fromkeys(VARIABLE.findall(template or "")))


def unknown_case_variables(template: str | None) -> list[str]:
    """Variables of ``template`` a case cannot fill (checked when the evaluation is created)."""
    return [name for name in template_variables(template) if name not in CASE_VARIABLES]


def case_prompt_and_template(template: str | None, case: dict) -> tuple[str, str | None]:
    """(prompt, template) to generate from for one case, ``case`` holding the CASE_VARIABLES
    (``input`` defaults to ``prompt``). Unchanged when the template has no ``{{ variables }}``."""
    if not template_variables(template):
        return case["prompt"], template
    values = {**{name: "" for name in CASE_VARIABLES}, **case}
    values["input"] = case.get("input", case["prompt"])
    filled = VARIABLE.sub(lambda match: str(values.get(match.group(1), match.group(0))), template)
    if {"prompt", "input"} & set(template_variables(template)):
        return filled, None  # a wrapper: the filled template is the whole user message
    return case["prompt"], filled
