"""Suite case parsing and validation: generic CSV/JSONL with a column mapping, and the public
benchmark formats. Pure: no Django imports. Files are read by core.tabular, the reader
datasets use too. All or nothing: a file with any bad line raises `TabularError` listing every
line-numbered error, and no case is returned.

A case is a dict with exactly CASE_FIELDS, plus `image_png` (PNG bytes) for an image case;
`canonical_cases` fixes their order and the bytes hashed into a suite version's sha256 (an image
enters the hash as its sha256).
"""

from __future__ import annotations

import hashlib
import json
import re

from mlcore.typographic import is_png
from core.tabular import TabularError, read_records

CASE_FIELDS = ("key", "prompt", "category", "attack_family", "modality", "expected", "source", "parent_key")
EXPECTED = ("refuse", "comply")
MODALITIES = ("text", "image+text")
FIELD_LIMITS = {"key": 200, "category": 100, "attack_family": 64, "source": 200, "parent_key": 200}


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "case"


def validate_case(raw: dict) -> dict:
    """A complete, normalised case from a partial dict; raises ValueError naming the bad field."""
    unknown = set(raw) - set(CASE_FIELDS) - {"image_png"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; cases have {', '.join(CASE_FIELDS)}")
    case = {
        "key": str(raw.get("key") or "").strip(),
        "prompt": str(raw.get("prompt") or ""),
        "category": str(raw.get("category") or "uncategorized").strip(),
        "attack_family": str(raw.get("attack_family") or "direct").strip(),
        "modality": str(raw.get("modality") or "text").strip(),
        "expected": str(raw.get("expected") or "").strip().lower(),
        "source": str(raw.get("source") or "").strip(),
        "parent_key": str(raw.get("parent_key") or "").strip(),
    }
    if not case["prompt"].strip():
        raise ValueError("prompt is empty")
    if not case["key"]:
        raise ValueError("key is empty")
    if case["expected"] not in EXPECTED:
        raise ValueError(f"expected must be 'refuse' or 'comply', got {raw.get('expected')!r}")
    if case["modality"] not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {case['modality']!r}")
    for name, limit in FIELD_LIMITS.items():
        if len(case[name]) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    image = raw.get("image_png")
    if image is not None:
        if not is_png(image):
            raise ValueError("image_png is not a PNG image")
        if case["modality"] != "image+text":
            raise ValueError(f"a case with an image must have modality 'image+text', got {case['modality']!r}")
        case["image_png"] = bytes(image)
    elif case["modality"] == "image+text":
        raise ValueError("modality 'image+text' needs an image; image cases come from an image transform (typographic) or the safebench format")
    return case


def validate_cases(raw_cases: list[dict], line_numbers: list[int] | None = None) -> list[dict]:
    """Validate all cases, with duplicate-key detection; errors carry line (or item) numbers."""
    line_numbers = line_numbers or list(range(1, len(raw_cases) + 1))
    cases, errors, seen = [], [], {}
    for line, raw in zip(line_numbers, raw_cases, strict=True):
        try:
            case = validate_case(raw)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if case["key"] in seen:
            errors.append((line, f"duplicate key {case['key']!r} (first on line {seen[case['key']]})"))
            continue
        seen[case["key"]] = line
        cases.append(case)
    if errors:
        raise TabularError("invalid cases, nothing imported", errors)
    if not cases:
        raise TabularError("no cases found, nothing imported", [(0, "the input holds no cases")])
    return cases


def canonical_cases(cases: list[dict]) -> tuple[list[dict], str]:
    """Cases sorted by key with a fixed field order, and the sha256 of their canonical JSON.

    An image case keeps its `image_png`; the hash sees the image as `image_sha256`, and text
    cases hash exactly as they did before images existed.
    """
    ordered, hashed = [], []
    for case in sorted(cases, key=lambda c: c["key"]):
        item = {name: case[name] for name in CASE_FIELDS}
        ordered.append({**item, "image_png": case["image_png"]} if case.get("image_png") is not None else item)
        hashed.append({**item, "image_sha256": hashlib.sha256(case["image_png"]).hexdigest()} if case.get("image_png") is not None else item)
    payload = json.dumps(hashed, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return ordered, hashlib.sha256(payload).hexdigest()


def _require_columns(rows, columns, format_name):
    present = set(rows[0][1]) if rows else set()
    missing = [column for column in columns if column not in present]
    if missing:
        raise TabularError(f"not a {format_name} file, nothing imported", [(1, f"missing columns {missing}")])


def _mapped(rows, mapping, defaults):
    unknown = (set(mapping) | set(defaults)) - set(CASE_FIELDS)
    if unknown:
        raise TabularError("bad column mapping", [(0, f"unknown case fields {sorted(unknown)}; map to {', '.join(CASE_FIELDS)}")])
    if "prompt" not in mapping:
        raise TabularError("bad column mapping", [(0, 'the mapping must name the prompt column, e.g. {"prompt": "question"}')])
    _require_columns(rows, list(mapping.values()), "mapped")
    cases = []
    for index, (_, row) in enumerate(rows, start=1):
        case = dict(defaults)
        case.update({name: row.get(column) for name, column in mapping.items()})
        case.setdefault("key", None)
        if not case["key"]:
            case["key"] = f"case-{index:05d}"
        cases.append(case)
    return cases


def _advbench(rows):
    _require_columns(rows, ["goal", "target"], "AdvBench")
    return [
        {"key": f"advbench-{index:04d}", "prompt": row["goal"], "category": "advbench", "expected": "refuse", "source": "advbench"} for index, (_, row) in enumerate(rows, start=1)
    ]


def _harmbench(rows):
    _require_columns(rows, ["Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"], "HarmBench")
    cases = []
    for _, row in rows:
        context = (row.get("ContextString") or "").strip()
        # HarmBench's own layout for contextual behaviours: the context, a rule, the behaviour.
        prompt = f"{context}\n\n---\n\n{row['Behavior']}" if context else row["Behavior"]
        cases.append(
            {
                "key": f"harmbench-{row['BehaviorID']}",
                "prompt": prompt,
                "category": row["SemanticCategory"] or "uncategorized",
                "expected": "refuse",
                "source": f"harmbench:{row['FunctionalCategory']}",
            }
        )
    return cases


def _jailbreakbench(rows):
    _require_columns(rows, ["Index", "Goal", "Behavior", "Category"], "JailbreakBench")
    return [
        {
            "key": f"jbb-{row['Index']}",
            "prompt": row["Goal"],
            "category": row["Category"] or "uncategorized",
            "expected": "refuse",
            "source": f"jailbreakbench:{row.get('Source') or ''}".rstrip(":"),
        }
        for _, row in rows
    ]


def _xstest(rows):
    _require_columns(rows, ["id", "prompt", "type", "label"], "XSTest")
    labels = {"safe": "comply", "unsafe": "refuse"}
    cases = []
    for _, row in rows:
        label = (row["label"] or "").strip().lower()
        cases.append(
            {
                "key": f"xstest-{row['id']}",
                "prompt": row["prompt"],
                "category": row["type"] or "uncategorized",
                # An unknown label is passed through so validation reports it with its line.
                "expected": labels.get(label, label),
                "source": "xstest",
            }
        )
    return cases


def _strongreject(rows):
    _require_columns(rows, ["category", "source", "forbidden_prompt"], "StrongREJECT")
    return [
        {
            "key": f"strongreject-{index:04d}",
            "prompt": row["forbidden_prompt"],
            "category": row["category"] or "uncategorized",
            "expected": "refuse",
            "source": f"strongreject:{row['source']}".rstrip(":"),
        }
        for index, (_, row) in enumerate(rows, start=1)
    ]


def _safebench(rows):
    """FigStep's SafeBench: each `instruction` (e.g. "Steps to manufacture illegal drugs.") is drawn
    as a typographic image beside FigStep's neutral text prompt. `question` is the harmful request
    the instruction was written from; the model never sees it, so it is not part of the case."""
    from mlcore.typographic import FIGSTEP_PROMPT, render_typographic

    _require_columns(rows, ["dataset", "category_id", "task_id", "category_name", "question", "instruction"], "SafeBench")
    cases, errors = [], []
    for line, row in rows:
        try:
            image = render_typographic(row["instruction"] or "")
        except ValueError as exc:
            errors.append((line, f"instruction: {exc}"))
            continue
        cases.append(
            {
                "key": f"safebench-{_slug(row['dataset'] or 'safebench')}-{row['category_id']}-{row['task_id']}",
                "prompt": FIGSTEP_PROMPT,
                "category": row["category_name"] or "uncategorized",
                "attack_family": "typographic",
                "modality": "image+text",
                "expected": "refuse",
                "source": "figstep:safebench",
                "image_png": image,
            }
        )
    if errors:
        raise TabularError("invalid SafeBench rows, nothing imported", errors)
    return cases


BUILTIN_FORMATS = {
    "advbench": _advbench,
    "harmbench": _harmbench,
    "jailbreakbench": _jailbreakbench,
    "xstest": _xstest,
    "strongreject": _strongreject,
    "safebench": _safebench,
}
FORMATS = ("csv", "jsonl", *BUILTIN_FORMATS)


def parse_cases(
    data: bytes,
    *,
    format: str,
    max_line_bytes: int,
    column_mapping: dict | None = None,
    defaults: dict | None = None,
) -> list[dict]:
    """Validated cases from a file's bytes.

    `format`: "csv" or "jsonl" with `column_mapping` ({case field: column}) and optional
    `defaults` ({case field: value}, e.g. {"expected": "refuse"}); or one of the public formats
    (advbench, harmbench, jailbreakbench, xstest, strongreject, safebench), whose defaults can be overridden
    the same way (e.g. JailbreakBench's benign behaviours with {"expected": "comply"}).
    """
    if format not in FORMATS:
        raise TabularError(f"unknown format {format!r}", [(0, f"expected one of {', '.join(FORMATS)}")])
    rows = read_records(data, "jsonl" if format == "jsonl" else "csv", max_line_bytes=max_line_bytes)
    if not rows:
        raise TabularError("no cases found, nothing imported", [(0, "the file holds no data rows")])
    if format in BUILTIN_FORMATS:
        if column_mapping:
            raise TabularError("bad column mapping", [(0, f"format {format!r} has fixed columns; use format 'csv' to map columns")])
        cases = [{**case, **(defaults or {})} for case in BUILTIN_FORMATS[format](rows)]
    else:
        cases = _mapped(rows, column_mapping or {}, defaults or {})
    return validate_cases(cases, [line for line, _ in rows])
