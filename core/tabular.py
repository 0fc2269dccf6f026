"""The one reader of uploaded tables (CSV with a header row, or JSON Lines), for dataset and suite
imports alike, and the one way their errors are reported. Plain module, no Django.

All or nothing, and nothing is lost: every problem is collected with the line it is on (line 0
means the whole file), a caller's own row checks add theirs the same way, and `TabularError`
shows the first MAX_SHOWN_ERRORS of them, then "and N more".
"""

import csv
import io
import json

from core.safe_json import json_loads

MAX_SHOWN_ERRORS = 20


def error_lines(errors, *, unit="line", cap=MAX_SHOWN_ERRORS) -> list[str]:
    """Errors [(number, text)] as messages: "line 7: prompt is empty", at most `cap` of them and
    then "and N more". Number 0 is a problem of the whole input and is shown bare."""
    shown = [f"{unit} {number}: {text}" if number else text for number, text in errors[:cap]]
    if len(errors) > cap:
        shown.append(f"and {len(errors) - cap} more")
    return shown


class TabularError(ValueError):
    """An input refused as a whole: `summary` says what was refused, `errors` [(line, text)] say
    exactly why, every one of them."""

    def __init__(self, summary, errors=()):
        self.summary = summary
        self.errors = list(errors)
        super().__init__(summary)

    def messages(self, *, unit="line") -> list[str]:
        return error_lines(self.errors, unit=unit)

    def render(self, *, unit="line") -> str:
        shown = "; ".join(self.messages(unit=unit))
        return f"{self.summary}: {shown}" if shown else self.summary

    def __str__(self):
        return self.render()


def decode_text(data: bytes, *, max_line_bytes: int) -> str:
    """The file's text, or TabularError naming every line that is too long or not UTF-8.

    Checked line by line on the bytes: a newline byte is never part of a multi-byte UTF-8
    character, so each line decodes on its own. A leading byte-order mark is dropped."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    errors = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > max_line_bytes:
            errors.append((number, f"{len(line)} bytes exceeds the limit of {max_line_bytes} bytes"))
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append((number, f"undecodable byte 0x{line[exc.start]:02x}; re-save the file as UTF-8"))
    if errors:
        raise TabularError("unreadable file, nothing imported", errors)
    return data.decode("utf-8")


def _jsonl_records(text):
    records, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json_loads(line)
        except json.JSONDecodeError as exc:
            errors.append((number, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(record, dict):
            errors.append((number, f"expected a JSON object, got {type(record).__name__}"))
            continue
        records.append((number, record))
    return records, errors


def _csv_records(text):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, errors = [], []
    try:
        header = next(reader, None)
        if header is None:
            return [], [(1, "the file is empty (expected a header row)")]
        header = [column.strip() for column in header]
        duplicates = sorted({column for column in header if header.count(column) > 1})
        if duplicates:
            errors.append((1, f"duplicate column names in the header: {', '.join(duplicates)}"))
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                errors.append((reader.line_num, f"{len(row)} fields, the header has {len(header)}"))
                continue
            records.append((reader.line_num, dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        # The csv module cannot resynchronise after a broken quote; what came before is reported.
        errors.append((reader.line_num, f"malformed CSV: {exc}"))
    return records, errors


def read_records(data: bytes, fmt: str, *, max_line_bytes: int) -> list[tuple[int, dict]]:
    """[(line number, record)] from CSV (header row) or JSONL bytes; blank lines are skipped and a
    record's line is the line it ends on. TabularError lists every unreadable line."""
    if fmt not in ("csv", "jsonl"):
        raise TabularError(f"unknown format {fmt!r}", [(0, "expected csv or jsonl")])
    text = decode_text(data, max_line_bytes=max_line_bytes)
    records, errors = _jsonl_records(text) if fmt == "jsonl" else _csv_records(text)
    if errors:
        raise TabularError(f"malformed {fmt.upper()}, nothing imported", errors)
    return records


def require_values(records, columns) -> None:
    """TabularError naming every record whose `columns` are missing, not strings, or blank."""
    errors = []
    for number, record in records:
        for column in columns:
            value = record.get(column)
            if not isinstance(value, str) or not value.strip():
                errors.append((number, f"'{column}' is missing or empty"))
    if errors:
        raise TabularError("invalid rows, nothing imported", errors)
