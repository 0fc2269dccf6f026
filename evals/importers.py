"""Suite case parsing and validation: generic CSV/JSONL with a column mapping, and the public
benchmark formats. Pure: no Django imports. All or nothing: a file with any bad line raises
`ImportFailed` listing line-numbered errors, and no case is returned.

A case is a dict with exactly CASE_FIELDS, plus `image_png` (PNG bytes) for an image case;
`canonical_cases` fixes their order and the bytes hashed into a suite version's sha256 (an image
enters the hash as its sha256).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field

from evals.typographic import is_png
from core.safe_json import json_loads

CASE_FIELDS = ("key", "prompt", "category", "attack_family", "modality", "expected", "source", "parent_key")
EXPECTED = ("refuse", "comply")
MODALITIES = ("text", "image+text")
FIELD_LIMITS = {"key": 200, "category": 100, "attack_family": 64, "source": 200, "parent_key": 200}
MAX_ERRORS = 50


@dataclass
class ImportFailed(Exception):
    message: str
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message); 0 = whole file

    def __str__(self):
        shown = "; ".join(f"line {line}: {text}" if line else text for line, text in self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        return f"{self.message}: {shown}{more}" if shown else self.message


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
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ImportFailed("invalid cases, nothing imported", errors)
    if not cases:
        raise ImportFailed("no cases found, nothing imported", [(0, "the input holds no cases")])
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


def _decode(data: bytes, max_line_bytes: int) -> str:
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if len(line) > max_line_bytes:
            raise ImportFailed("line too long, nothing imported", [(number, f"{len(line)} bytes exceeds the limit of {max_line_bytes} bytes")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            "the file is not valid UTF-8, nothing imported",
            [(line, f"undecodable byte 0x{data[exc.start]:02x}; re-save the file as UTF-8")],
        ) from None


def _read_csv(text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        header = reader.fieldnames
        if not header:
            raise ImportFailed("empty file, nothing imported", [(1, "no header row")])
        for row in reader:
            if None in row:
                raise ImportFailed("malformed CSV, nothing imported", [(reader.line_num, f"{len(header) + len(row[None])} fields, header has {len(header)}")])
            if any(value is None for value in row.values()):
                raise ImportFailed("malformed CSV, nothing imported", [(reader.line_num, f"fewer fields than the header's {len(header)}")])
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise ImportFailed("malformed CSV, nothing imported", [(reader.line_num, str(exc))]) from None
    return rows


def _read_jsonl(text: str) -> list[tuple[int, dict]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json_loads(line)
        except json.JSONDecodeError as exc:
            errors.append((number, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(value, dict):
            errors.append((number, f"expected a JSON object, got {type(value).__name__}"))
            continue
        rows.append((number, value))
    if errors:
        raise ImportFailed("malformed JSONL, nothing imported", errors[:MAX_ERRORS])
    return rows


def _require_columns(rows, columns, format_name):
    present = set(rows[0][1]) if rows else set()
    missing = [column for column in columns if column not in present]
    if missing:
        raise ImportFailed(f"not a {format_name} file, nothing imported", [(1, f"missing columns {missing}")])


def _mapped(rows, mapping, defaults):
    unknown = (set(mapping) | set(defaults)) - set(CASE_FIELDS)
    if unknown:
        raise ImportFailed("bad column mapping", [(0, f"unknown case fields {sorted(unknown)}; map to {', '.join(CASE_FIELDS)}")])
    if "prompt" not in mapping:
        raise ImportFailed("bad column mapping", [(0, "the mapping must name the prompt column, e.g. {\"prompt\": \"question\"}")])
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
        {"key": f"advbench-{index:04d}", "prompt": row["goal"], "category": "advbench", "expected": "refuse", "source": "advbench"}
        for index, (_, row) in enumerate(rows, start=1)
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
    from evals.typographic import FIGSTEP_PROMPT, render_typographic

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
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ImportFailed("invalid SafeBench rows, nothing imported", errors)
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
        raise ImportFailed(f"unknown format {format!r}", [(0, f"expected one of {', '.join(FORMATS)}")])
    text = _decode(data, max_line_bytes)
    rows = _read_jsonl(text) if format == "jsonl" else _read_csv(text)
    if not rows:
        raise ImportFailed("no cases found, nothing imported", [(0, "the file holds no data rows")])
    if format in BUILTIN_FORMATS:
        if column_mapping:
            raise ImportFailed("bad column mapping", [(0, f"format {format!r} has fixed columns; use format 'csv' to map columns")])
        cases = [{**case, **(defaults or {})} for case in BUILTIN_FORMATS[format](rows)]
    else:
        cases = _mapped(rows, column_mapping or {}, defaults or {})
    return validate_cases(cases, [line for line, _ in rows])
