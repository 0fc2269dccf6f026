"""The one tabular reader (core.tabular) behind dataset and suite imports: every bad line is
reported with its number, in the same words for CSV and JSONL, shown up to a cap; and a dataset
import and a suite import of the same broken file are refused with the same messages."""

import pytest

from evals import services as eval_services
from versions import services
from core.errors import ValidationFailed
from versions.models import DatasetVersion
from core.tabular import MAX_SHOWN_ERRORS, TabularError, read_records, require_values


def test_csv_and_jsonl_read_to_the_same_numbered_records():
    csv = b"prompt,response\nWhat is bread?,Flour and water.\n\nWhat is soup?,Water and vegetables.\n"
    jsonl = b'{"prompt": "What is bread?", "response": "Flour and water."}\n\n\n{"prompt": "What is soup?", "response": "Water and vegetables."}\n'

    assert read_records(csv, "csv", max_line_bytes=1000) == [
        (2, {"prompt": "What is bread?", "response": "Flour and water."}),
        (4, {"prompt": "What is soup?", "response": "Water and vegetables."}),
    ]
    assert read_records(jsonl, "jsonl", max_line_bytes=1000) == [
        (1, {"prompt": "What is bread?", "response": "Flour and water."}),
        (4, {"prompt": "What is soup?", "response": "Water and vegetables."}),
    ]


@pytest.mark.parametrize("fmt, header", [("csv", b"prompt,response\n"), ("jsonl", b"")])
def test_every_overlong_and_undecodable_line_is_named_in_both_formats(fmt, header):
    # given a file whose lines 2 and 4 (after any header) are broken in two different ways
    good = b"ok,ok\n" if fmt == "csv" else b'{"prompt": "ok", "response": "ok"}\n'
    data = header + good + b"x" * 120 + b"\n" + good + b"caf\xe9\n"
    first = 2 if fmt == "csv" else 1

    with pytest.raises(TabularError) as failure:
        read_records(data, fmt, max_line_bytes=100)

    assert failure.value.summary == "unreadable file, nothing imported"
    assert failure.value.errors == [(first + 1, "120 bytes exceeds the limit of 100 bytes"), (first + 3, "undecodable byte 0xe9; re-save the file as UTF-8")]


def test_every_malformed_csv_row_is_named():
    data = b'prompt,response\na,b\nonly one\na,b,c\n"broken,quote\n'

    with pytest.raises(TabularError) as failure:
        read_records(data, "csv", max_line_bytes=1000)

    assert str(failure.value) == (
        "malformed CSV, nothing imported: line 3: 1 fields, the header has 2; line 4: 3 fields, the header has 2; line 5: malformed CSV: unexpected end of data"
    )


def test_every_malformed_jsonl_line_is_named():
    data = b'{"prompt": "a"}\n{"prompt": \n[1, 2]\n"text"\n'

    with pytest.raises(TabularError) as failure:
        read_records(data, "jsonl", max_line_bytes=1000)

    assert failure.value.messages() == ["line 2: invalid JSON: Expecting value at column 12", "line 3: expected a JSON object, got list", "line 4: expected a JSON object, got str"]


def test_duplicate_header_columns_and_empty_files_are_refused():
    with pytest.raises(TabularError) as duplicate:
        read_records(b"prompt,prompt\na,b\n", "csv", max_line_bytes=1000)
    with pytest.raises(TabularError) as empty:
        read_records(b"", "csv", max_line_bytes=1000)

    assert duplicate.value.errors == [(1, "duplicate column names in the header: prompt")]
    assert empty.value.errors == [(1, "the file is empty (expected a header row)")]
    assert read_records(b"\n\n", "jsonl", max_line_bytes=1000) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_errors_beyond_the_cap_are_counted_not_dropped(fmt):
    # given 25 rows missing their response, in either format
    if fmt == "csv":
        data = b"prompt,response\n" + b"a question,\n" * 25
    else:
        data = b'{"prompt": "a question", "response": ""}\n' * 25
    records = read_records(data, fmt, max_line_bytes=1000)

    with pytest.raises(TabularError) as failure:
        require_values(records, ("prompt", "response"))

    first = 2 if fmt == "csv" else 1
    assert len(failure.value.errors) == 25
    assert failure.value.messages() == [f"line {first + n}: 'response' is missing or empty" for n in range(MAX_SHOWN_ERRORS)] + ["and 5 more"]


BROKEN_CSV = b'prompt,response,expected\nHow do I bake bread?,Mix flour and water.,comply\nonly one field\n"unclosed\n'
BROKEN_MESSAGES = ["line 3: 1 fields, the header has 3", "line 4: malformed CSV: unexpected end of data"]
BROKEN_JSONL = b'{"prompt": "How do I bake bread?", "response": "Mix.", "expected": "comply"}\nnot json\n[]\n'
BROKEN_JSONL_MESSAGES = ["line 2: invalid JSON: Expecting value at column 1", "line 3: expected a JSON object, got list"]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt, data, messages", [("csv", BROKEN_CSV, BROKEN_MESSAGES), ("jsonl", BROKEN_JSONL, BROKEN_JSONL_MESSAGES)])
def test_datasets_and_suites_refuse_the_same_broken_file_with_the_same_messages(project, user, fmt, data, messages):
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    suite = eval_services.suite_create(project=project, name="core", actor=user)

    with pytest.raises(ValidationFailed) as as_dataset:
        services.dataset_version_import(dataset=dataset, data=data, fmt=fmt, actor=user)
    with pytest.raises(ValidationFailed) as as_suite:
        eval_services.suite_version_import(suite=suite, data=data, format=fmt, actor=user, column_mapping={"prompt": "prompt", "expected": "expected"})

    assert as_dataset.value.fields == as_suite.value.fields == {"file": messages}
    assert str(as_dataset.value) == str(as_suite.value) == f"malformed {fmt.upper()}, nothing imported: {'; '.join(messages)}"
    assert DatasetVersion.objects.count() == 0 and suite.versions.count() == 0
