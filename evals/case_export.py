"""CSV and JSONL exports of an evaluation's case results, streamed row by row (bounded memory at any
size). Exactly the rows the explorer's filters select, in case order. Responses are columns only
when the reader may see them (evals.hazards); otherwise every row says it is ``redacted`` and the
response carries a header saying why."""

import csv
import io
import json

from django.http import StreamingHttpResponse

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
COLUMNS = ("position", "key", "category", "attack_family", "modality", "expected", "prompt", "outcome_a", "outcome_b", "flipped")
RESPONSE_COLUMNS = ("response_a", "response_b")
OMITTED_HEADER = "X-Lethe-Responses"
OMITTED_NOTE = "omitted: any response may be harmful, and reading them needs the reviewer role"
# A spreadsheet runs a cell that starts with one of these as a formula: such a CSV cell is written
# with a leading apostrophe (OWASP's advice for CSV injection). JSONL is left exact.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def export_row(result, *, responses):
    case = result.case
    row = {
        "position": result.position,
        "key": case.key,
        "category": case.category,
        "attack_family": case.attack_family,
        "modality": case.modality,
        "expected": case.expected,
        "prompt": case.prompt,
        "outcome_a": result.outcome_a,
        "outcome_b": result.outcome_b,
        "flipped": result.flipped,
    }
    if responses:
        row.update(response_a=result.response_a, response_b=result.response_b)
    row["redacted"] = not responses
    return row


def _csv_cell(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_lines(results, *, format, responses):
    """The export's text, one line (or CSV record) at a time: a CSV header first, then a row per result."""
    rows = (export_row(result, responses=responses) for result in results.iterator(chunk_size=CHUNK))
    if format == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = (*COLUMNS, *(RESPONSE_COLUMNS if responses else ()), "redacted")

    def record(values):
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield record(header)
    for row in rows:
        yield record([_csv_cell(row[name]) for name in header])


def export_response(results, *, format, responses, filename):
    response = StreamingHttpResponse(export_lines(results, format=format, responses=responses), content_type=FORMATS[format])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{format}"'
    response["X-Content-Type-Options"] = "nosniff"
    response[OMITTED_HEADER] = "included" if responses else OMITTED_NOTE
    return response
