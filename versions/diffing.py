"""Text diffs for prompt versions: unified text, side-by-side rows, and the word-level
highlighting the diff page draws inside changed lines. No Django."""

import difflib
import re

NO_NEWLINE = "\\ No newline at end of file\n"
# Words, runs of white space, and single punctuation characters: a changed word is highlighted
# alone, and "{{ name }}" splits into its braces and name.
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def unified(old, new, old_name, new_name):
    """A unified diff as `diff -u` and git print it: a last line without a newline is followed by
    the "\\ No newline at end of file" marker instead of being glued to the next line."""
    lines = difflib.unified_diff(_lines(old), _lines(new), fromfile=old_name, tofile=new_name)
    return "".join(line if line.endswith("\n") else f"{line}\n{NO_NEWLINE}" for line in lines)


def _lines(text):
    """Lines ending at "\\n" only (as git splits them), each with its newline when it has one."""
    return _LINE.findall(text)


def side_by_side(old, new):
    """Rows of {"op", "old_line", "old", "new_line", "new"}; op is equal, replace, delete or insert."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for offset in range(span):
            i, j = i1 + offset, j1 + offset
            has_old, has_new = i < i2, j < j2
            rows.append(
                {
                    "op": op if op != "replace" or (has_old and has_new) else ("delete" if has_old else "insert"),
                    "old_line": i + 1 if has_old else None,
                    "old": old_lines[i] if has_old else None,
                    "new_line": j + 1 if has_new else None,
                    "new": new_lines[j] if has_new else None,
                }
            )
    return rows


def word_segments(old, new):
    """(old segments, new segments) of two versions of one line: lists of (changed, text) whose
    texts join back to the line; ``changed`` marks the words one side has and the other lacks."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    old_segments, new_segments = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        _append(old_segments, op != "equal", "".join(a[i1:i2]))
        _append(new_segments, op != "equal", "".join(b[j1:j2]))
    return old_segments, new_segments


def _append(segments, changed, text):
    if not text:
        return
    if segments and segments[-1][0] == changed:
        segments[-1] = (changed, segments[-1][1] + text)
    else:
        segments.append((changed, text))


def highlighted(rows):
    """The side-by-side rows with "old_segments" and "new_segments" added: word-level changes in
    a replaced line, the whole text unmarked elsewhere (its +/- marker says what happened)."""
    out = []
    for row in rows:
        if row["op"] == "replace":
            old_segments, new_segments = word_segments(row["old"], row["new"])
        else:
            old_segments = [(False, row["old"])] if row["old"] else []
            new_segments = [(False, row["new"])] if row["new"] else []
        out.append({**row, "old_segments": old_segments, "new_segments": new_segments})
    return out


def unified_rows(rows):
    """Highlighted side-by-side rows rearranged for a unified view: in each changed block every
    old line (marker "-") comes before every new line (marker "+"), as in a unified diff; equal
    lines have the marker " "."""
    out, removed, added = [], [], []

    def flush():
        out.extend(removed + added)
        removed.clear()
        added.clear()

    for row in rows:
        if row["op"] == "equal":
            flush()
            out.append({"marker": " ", "op": "equal", "old_line": row["old_line"], "new_line": row["new_line"], "segments": row["new_segments"]})
            continue
        if row["old_line"] is not None:
            removed.append({"marker": "-", "op": "delete", "old_line": row["old_line"], "new_line": None, "segments": row["old_segments"]})
        if row["new_line"] is not None:
            added.append({"marker": "+", "op": "insert", "old_line": None, "new_line": row["new_line"], "segments": row["new_segments"]})
    flush()
    return out
