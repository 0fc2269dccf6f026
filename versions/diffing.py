"""Text diffs for prompt versions: unified text and side-by-side rows for the UI. No Django."""
import difflib


def unified(old, new, old_name, new_name):
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_name, tofile=new_name)
    )


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
            rows.append({
                "op": op if op != "replace" or (has_old and has_new) else ("delete" if has_old else "insert"),
                "old_line": i + 1 if has_old else None,
                "old": old_lines[i] if has_old else None,
                "new_line": j + 1 if has_new else None,
                "new": new_lines[j] if has_new else None,
            })
    return rows
