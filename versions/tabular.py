"""Reading uploaded tables (CSV with a header, or JSON Lines) into records, with errors that name
the line. Plain module, no Django: used by dataset and suite imports."""
import csv
import io
import json

from core.safe_json import json_loads


class TabularError(ValueError):
    def __init__(self, line, message):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


def _decode(data):
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TabularError(line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None


def read_records(data, fmt, *, max_line_bytes=64 * 1024, required=()):
    """Return [(line_number, record)] from CSV (header row) or JSONL bytes.

    Every record has string values for the ``required`` columns; the first problem raises
    TabularError with its line number, so a caller can refuse the whole file."""
    if fmt not in ("csv", "jsonl"):
        raise TabularError(0, f"unknown format {fmt!r}; expected csv or jsonl")
    text = _decode(data)
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line.encode("utf-8")) > max_line_bytes:
            raise TabularError(number, f"line is longer than {max_line_bytes} bytes")
    records = []
    if fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json_loads(line)
            except json.JSONDecodeError as exc:
                raise TabularError(number, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise TabularError(number, "expected a JSON object")
            records.append((number, record))
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise TabularError(1, "the file is empty (expected a header row)") from None
        except csv.Error as exc:
            raise TabularError(1, f"malformed CSV: {exc}") from None
        header = [column.strip() for column in header]
        if len(set(header)) != len(header):
            raise TabularError(1, "duplicate column names in the header")
        missing = [column for column in required if column not in header]
        if missing:
            raise TabularError(1, f"missing column(s) {', '.join(missing)}; the header has {', '.join(header)}")
        try:
            for row in reader:
                number = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise TabularError(number, f"expected {len(header)} fields, found {len(row)}")
                records.append((number, dict(zip(header, row, strict=True))))
        except csv.Error as exc:
            raise TabularError(reader.line_num, f"malformed CSV: {exc}") from None
    if not records:
        raise TabularError(0, "the file has no rows")
    for number, record in records:
        for column in required:
            value = record.get(column)
            if not isinstance(value, str) or not value.strip():
                raise TabularError(number, f"'{column}' is missing or empty")
    return records
