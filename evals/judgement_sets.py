"""Labelled judgement sets: responses to harmful and benign requests, each with what humans said
of it, against which a judge is calibrated (evals.calibration). Pure: no Django imports.

A set is a dataset of kind `judgements` (versions.Dataset): versioned, hashed and immutable like
every dataset. Its canonical row:

    {"prompt", "response", "expected": "refuse" | "comply", "human": <label>,
     "key"?, "category"?, "source"?, "model"?}

`human` is an outcome (evals.metrics) allowed for the expected behaviour, or the coarse
`not_attack_success` / `not_complied` (evals.calibration.HUMAN_LABELS). The response may be empty
(humans then usually say `non_answer`). `judgement_row_clean` is the row validator registered
for the kind; `parse_judgements` reads a file in one of FORMATS into canonical rows, all or
nothing, every error with its line.

Built-in layouts of public human-labelled sets (docs/evaluation.md, "Judge calibration", cites
each source):
- `xstest-completions`: XSTest v2's model completions with human labels
  (`id,type,prompt,completion,annotation_1,annotation_2,agreement,final_label`). Prompts whose
  `type` starts with `contrast_` are XSTest's unsafe contrasts (expected refuse), the rest are
  safe (expected comply). `1_full_compliance` is compliance; `2_full_refusal` and
  `3_partial_refusal` are both refusals (XSTest counts a partial refusal as a refusal too).
- `harmbench-val`: HarmBench's classifier validation set (`text_behaviors_val_set.json`), an
  object {BehaviorID: [{test_case, generation, human_0, human_1, human_2, ...}]}: the human
  majority vote (1 = the generation is an instance of the behaviour) is `attack_success`, else
  `not_attack_success`; the prompt is `test_case`, the request the model answered (the behaviour
  text itself lives in HarmBench's behaviour CSV, not in this file).
- `do-not-answer`: Do-Not-Answer's annotated responses, either one response per row
  (`question,response,action,harmful`) or the released wide table `data_en.csv`
  (`question` and `<model>_response,<model>_harmful,<model>_action` per model). Every question is
  a harmful request (expected refuse); `harmful` 1 -> attack_success, else action 0 (the model
  refused) -> refused, else not_attack_success.
"""

from __future__ import annotations

import json

from evals.calibration import HUMAN_LABELS
from core.tabular import TabularError, decode_text, read_records

JUDGEMENT_FIELDS = ("prompt", "response", "expected", "human", "key", "category", "source", "model")
OPTIONAL_FIELDS = ("key", "category", "source", "model")
FIELD_LIMITS = {"key": 200, "category": 100, "source": 200, "model": 200}
FORMATS = ("jsonl", "csv", "xstest-completions", "harmbench-val", "do-not-answer")
BUILTIN_FORMATS = ("xstest-completions", "harmbench-val", "do-not-answer")

XSTEST_LABELS = {"1_full_compliance": "compliance", "2_full_refusal": "refusal", "3_partial_refusal": "refusal"}
XSTEST_OUTCOMES = {("refuse", "compliance"): "attack_success", ("refuse", "refusal"): "refused", ("comply", "compliance"): "complied", ("comply", "refusal"): "over_refusal"}
DNA_ACTIONS = range(0, 6)


def judgement_row_clean(raw: dict) -> dict:
    """The canonical row for `raw`, or ValueError naming the bad field. Optional fields left
    empty are dropped, so a CSV's empty cell and a missing JSON key store the same row."""
    if not isinstance(raw, dict):
        raise ValueError("expected an object")
    unknown = sorted(set(raw) - set(JUDGEMENT_FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; judgement rows have {', '.join(JUDGEMENT_FIELDS)}")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is missing or empty")
    response = raw.get("response")
    if not isinstance(response, str):
        raise ValueError("response is missing (an empty response is an empty string)")
    expected = raw.get("expected")
    expected = expected.strip().lower() if isinstance(expected, str) else expected
    if expected not in HUMAN_LABELS:
        raise ValueError(f"expected must be 'refuse' or 'comply', got {raw.get('expected')!r}")
    human = raw.get("human")
    human = human.strip().lower() if isinstance(human, str) else human
    if human not in HUMAN_LABELS[expected]:
        raise ValueError(f"human label {raw.get('human')!r} is not one for an expected-{expected} case; use one of {', '.join(HUMAN_LABELS[expected])}")
    row = {"prompt": prompt, "response": response, "expected": expected, "human": human}
    for name in OPTIONAL_FIELDS:
        value = raw.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        value = value.strip()
        if len(value) > FIELD_LIMITS[name]:
            raise ValueError(f"{name} is longer than {FIELD_LIMITS[name]} characters")
        if value:
            row[name] = value
    return row


# ---------------------------------------------------------------- generic CSV / JSONL


def _mapped(rows, mapping, label_mapping):
    """Rows renamed by `mapping` ({field: column}); without a mapping the columns are the fields.
    `label_mapping` translates the human column's values ({"1": "attack_success"})."""
    if mapping:
        unknown = sorted(set(mapping) - set(JUDGEMENT_FIELDS))
        if unknown:
            raise TabularError("bad column mapping", [(0, f"unknown fields {unknown}; map to {', '.join(JUDGEMENT_FIELDS)}")])
        missing = [column for column in mapping.values() if rows and column not in rows[0][1]]
        if missing:
            raise TabularError("bad column mapping, nothing imported", [(rows[0][0], f"missing columns {missing}")])
    mapped = []
    for line, row in rows:
        item = {name: row.get(column) for name, column in mapping.items()} if mapping else dict(row)
        if label_mapping and "human" in item and item["human"] is not None:
            value = item["human"]
            item["human"] = label_mapping.get(value if isinstance(value, str) else json.dumps(value), value)
        mapped.append((line, item))
    return mapped


# ---------------------------------------------------------------- XSTest v2 completions


def _xstest_completions(rows):
    missing = [column for column in ("id", "type", "prompt", "completion", "final_label") if column not in rows[0][1]]
    if missing:
        raise TabularError("not an XSTest completions file, nothing imported", [(1, f"missing columns {missing}")])
    parsed, errors = [], []
    for line, row in rows:
        kind = (row["type"] or "").strip()
        expected = "refuse" if kind.startswith("contrast_") else "comply"
        decision = XSTEST_LABELS.get((row["final_label"] or "").strip())
        if decision is None:
            errors.append((line, f"final_label must be one of {', '.join(XSTEST_LABELS)}, got {row['final_label']!r}"))
            continue
        parsed.append(
            (
                line,
                {
                    "key": (row["id"] or "").strip(),
                    "prompt": row["prompt"],
                    "response": row["completion"],
                    "expected": expected,
                    "human": XSTEST_OUTCOMES[(expected, decision)],
                    "category": kind,
                    "source": "xstest-v2",
                },
            )
        )
    if errors:
        raise TabularError("invalid XSTest rows, nothing imported", errors)
    return parsed


# ---------------------------------------------------------------- HarmBench classifier validation set


def _skip_space(text, position):
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _harmbench_entries(text):
    """[(line, behavior id, index, entry)] from HarmBench's {BehaviorID: [entries]} document,
    each entry with the line it starts on (the file is one JSON document, not JSON lines)."""
    decoder = json.JSONDecoder()
    lines_before, counted_to = 0, 0

    def line_at(position):
        nonlocal lines_before, counted_to
        lines_before += text.count("\n", counted_to, position)
        counted_to = position
        return lines_before + 1

    def fail(position, message):
        raise TabularError("not a HarmBench classifier validation file, nothing imported", [(line_at(position), message)])

    def decode(position):
        try:
            return decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise TabularError("malformed JSON, nothing imported", [(exc.lineno, f"{exc.msg} at column {exc.colno}")]) from None

    entries = []
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != "{":
        fail(position, "expected a JSON object {behavior id: [generations]}")
    position = _skip_space(text, position + 1)
    while position < len(text) and text[position] != "}":
        key_start = position
        behavior_id, position = decode(position)
        if not isinstance(behavior_id, str):
            fail(key_start, "expected a behavior id")
        position = _skip_space(text, position)
        if text[position : position + 1] != ":":
            fail(position, "expected ':' after the behavior id")
        position = _skip_space(text, position + 1)
        if text[position : position + 1] != "[":
            fail(position, f"behavior {behavior_id!r}: expected a list of generations")
        position = _skip_space(text, position + 1)
        index = 0
        while position < len(text) and text[position] != "]":
            start = position
            entry, position = decode(position)
            entries.append((line_at(start), behavior_id, index, entry))
            index += 1
            position = _skip_space(text, position)
            if text[position : position + 1] == ",":
                position = _skip_space(text, position + 1)
            elif text[position : position + 1] != "]":
                fail(position, "expected ',' or ']' between generations")
        position = _skip_space(text, position + 1)
        if text[position : position + 1] == ",":
            position = _skip_space(text, position + 1)
        elif text[position : position + 1] != "}":
            fail(position, "expected ',' or '}' between behaviors")
    if position >= len(text) or _skip_space(text, position + 1) != len(text):
        fail(min(position, len(text)), "expected the document to end after its closing '}'")
    return entries


def _vote(value):
    if value in (0, 1) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value)
    raise ValueError(f"human labels are 0 or 1, got {value!r}")


def _harmbench_val(text):
    parsed, errors = [], []
    for line, behavior_id, index, entry in _harmbench_entries(text):
        try:
            if not isinstance(entry, dict):
                raise ValueError("expected an object with test_case, generation and human_0..human_2")
            votes = [_vote(entry[name]) for name in ("human_0", "human_1", "human_2") if entry.get(name) is not None]
            if not votes:
                raise ValueError("no human label (human_0, human_1, human_2)")
            if 2 * sum(votes) == len(votes):
                raise ValueError(f"the human labels are tied ({votes})")
            for name in ("test_case", "generation"):
                if not isinstance(entry.get(name), str):
                    raise ValueError(f"{name} is missing or not a string")
        except ValueError as exc:
            errors.append((line, f"behavior {behavior_id!r} generation {index}: {exc}"))
            continue
        row = {
            "key": f"{behavior_id}/{index}",
            "prompt": entry["test_case"],
            "response": entry["generation"],
            "expected": "refuse",
            "human": "attack_success" if 2 * sum(votes) > len(votes) else "not_attack_success",
            "source": "harmbench-val",
        }
        if isinstance(entry.get("model"), str) and entry["model"].strip():
            row["model"] = entry["model"]
        parsed.append((line, row))
    if errors:
        raise TabularError("invalid HarmBench entries, nothing imported", errors)
    return parsed


# ---------------------------------------------------------------- Do-Not-Answer


def _integer(value, name, allowed):
    text = (value if isinstance(value, str) else str(value)).strip()
    if not text.lstrip("-").isdigit() or int(text) not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(str(v) for v in allowed)}, got {value!r}")
    return int(text)


def _dna_human(action, harmful):
    if harmful == 1:
        return "attack_success"
    return "refused" if action == 0 else "not_attack_success"


def _do_not_answer(rows):
    columns = set(rows[0][1])
    long_layout = {"question", "response", "action", "harmful"} <= columns
    models = sorted(
        column.removesuffix("_response")
        for column in columns
        if column.endswith("_response") and {column.replace("_response", "_harmful"), column.replace("_response", "_action")} <= columns
    )
    if "question" not in columns or not (long_layout or models):
        raise TabularError(
            "not a Do-Not-Answer file, nothing imported",
            [(1, "expected columns question,response,action,harmful or question with <model>_response,<model>_harmful,<model>_action")],
        )
    parsed, errors = [], []
    for index, (line, row) in enumerate(rows, start=1):
        category = (row.get("types_of_harm") or row.get("risk_area") or "").strip()[: FIELD_LIMITS["category"]]
        ident = (row.get("id") or "").strip() or str(index)
        answers = (
            [(row.get("model") or "", "response", "action", "harmful")]
            if long_layout
            else [(model, f"{model}_response", f"{model}_action", f"{model}_harmful") for model in models]
        )
        for model, response_column, action_column, harmful_column in answers:
            try:
                action = _integer(row[action_column], action_column, DNA_ACTIONS)
                harmful = _integer(row[harmful_column], harmful_column, (0, 1))
            except ValueError as exc:
                errors.append((line, str(exc)))
                continue
            parsed.append(
                (
                    line,
                    {
                        "key": f"dna-{ident}" + (f"-{model}" if model else ""),
                        "prompt": row["question"],
                        "response": row[response_column] or "",
                        "expected": "refuse",
                        "human": _dna_human(action, harmful),
                        "category": category,
                        "source": "do-not-answer",
                        "model": model.strip(),
                    },
                )
            )
    if errors:
        raise TabularError("invalid Do-Not-Answer rows, nothing imported", errors)
    return parsed


# ---------------------------------------------------------------- entry point


def parse_judgements(
    data: bytes,
    *,
    format: str,
    max_line_bytes: int,
    column_mapping: dict | None = None,
    defaults: dict | None = None,
    label_mapping: dict | None = None,
) -> list[dict]:
    """Canonical judgement rows from a file's bytes; all or nothing (TabularError lists the bad
    lines). `jsonl` / `csv`: Lethe's canonical columns, or any columns renamed by `column_mapping`
    ({field: column}) with `label_mapping` ({value in the file: human label}); the built-in
    formats read their public layout. `defaults` ({field: value}) fills fields a row leaves
    empty, e.g. {"model": "gpt4"} for an XSTest file named after its model."""
    if format not in FORMATS:
        raise TabularError(f"unknown format {format!r}", [(0, f"expected one of {', '.join(FORMATS)}")])
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(JUDGEMENT_FIELDS))
    if unknown:
        raise TabularError("bad defaults", [(0, f"unknown fields {unknown}; defaults are for {', '.join(JUDGEMENT_FIELDS)}")])
    if format in BUILTIN_FORMATS and (column_mapping or label_mapping):
        raise TabularError("bad column mapping", [(0, f"format {format!r} has fixed columns and labels; use format 'csv' or 'jsonl' to map them")])
    if format == "harmbench-val":
        # One JSON document: its lines are not records, so only the file size bounds it.
        rows = _harmbench_val(decode_text(data, max_line_bytes=len(data) + 1))
    else:
        records = read_records(data, "jsonl" if format == "jsonl" else "csv", max_line_bytes=max_line_bytes)
        if not records:
            raise TabularError("no rows found, nothing imported", [(0, "the file holds no data rows")])
        if format == "xstest-completions":
            rows = _xstest_completions(records)
        elif format == "do-not-answer":
            rows = _do_not_answer(records)
        else:
            rows = _mapped(records, column_mapping or {}, label_mapping or {})
    cleaned, errors = [], []
    for line, row in rows:
        for name, value in defaults.items():
            if row.get(name) in (None, ""):
                row[name] = value
        try:
            cleaned.append(judgement_row_clean(row))
        except ValueError as exc:
            errors.append((line, str(exc)))
    if errors:
        raise TabularError("invalid judgement rows, nothing imported", errors)
    if not cleaned:
        raise TabularError("no rows found, nothing imported", [(0, "the file holds no judgements")])
    return cleaned
