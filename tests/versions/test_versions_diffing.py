"""versions.diffing: the unified diff is what `diff -u` prints (and `patch` applies it), and the
word-level segments the diff page highlights."""

import shutil
import subprocess

import pytest

from versions import diffing

CASES = {
    "old lacks a final newline": ("a\nb", "a\nc\n"),
    "new lacks a final newline": ("a\nb\n", "a\nc"),
    "neither has one": ("one\ntwo", "one\n2"),
    "only the final newline differs": ("same", "same\n"),
    "plain change": ("line one\nline two\n", "line one\nline 2\nline three\n"),
    "carriage return inside a line": ("a\rb\n", "a\rc\n"),
}


def test_old_text_without_a_final_newline_is_not_glued_to_the_next_line():
    # given an old text whose last line has no newline, and a new one that changes that line
    # when
    text = diffing.unified("a\nb", "a\nc\n", "p@v1", "p@v2")

    # then the removed line ends, followed by the marker, before the added line starts
    assert text == "--- p@v1\n+++ p@v2\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"


@pytest.mark.skipif(not shutil.which("diff"), reason="needs diffutils' diff")
@pytest.mark.parametrize("old,new", CASES.values(), ids=CASES.keys())
def test_unified_matches_diff_u(tmp_path, old, new):
    # given two files with the texts
    (tmp_path / "old").write_bytes(old.encode())
    (tmp_path / "new").write_bytes(new.encode())

    # when diffutils compares them with the same labels
    result = subprocess.run(["diff", "-u", "--label", "p@v1", "--label", "p@v2", "old", "new"], cwd=tmp_path, capture_output=True)

    # then our unified diff is byte for byte what it printed
    assert result.returncode == 1
    assert diffing.unified(old, new, "p@v1", "p@v2") == result.stdout.decode()


@pytest.mark.skipif(not shutil.which("patch"), reason="needs GNU patch")
@pytest.mark.parametrize("old,new", CASES.values(), ids=CASES.keys())
def test_patch_applies_the_unified_diff_to_give_the_new_text(tmp_path, old, new):
    target = tmp_path / "prompt.txt"
    target.write_bytes(old.encode())
    (tmp_path / "change.diff").write_text(diffing.unified(old, new, "prompt.txt", "prompt.txt"))

    result = subprocess.run(["patch", "--quiet", "prompt.txt", "change.diff"], cwd=tmp_path, capture_output=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert target.read_bytes() == new.encode()


def test_word_segments_mark_only_the_changed_words_and_join_back_to_each_line():
    old_segments, new_segments = diffing.word_segments("Hello {{ name }}, take 2.", "Hello {{ name }}, take 3 now.")

    assert old_segments == [(False, "Hello {{ name }}, take "), (True, "2"), (False, ".")]
    assert new_segments == [(False, "Hello {{ name }}, take "), (True, "3 now"), (False, ".")]


def test_highlighted_rows_and_the_unified_arrangement():
    rows = diffing.highlighted(diffing.side_by_side("keep\nold word here\ngone\nend", "keep\nnew word here\nend\nadded"))

    assert [(row["op"], row["old_segments"], row["new_segments"]) for row in rows] == [
        ("equal", [(False, "keep")], [(False, "keep")]),
        ("replace", [(True, "old"), (False, " word here")], [(True, "new"), (False, " word here")]),
        ("delete", [(False, "gone")], []),
        ("equal", [(False, "end")], [(False, "end")]),
        ("insert", [], [(False, "added")]),
    ]
    # every old line of a changed block comes before its new lines, as in a unified diff
    assert [(row["marker"], row["old_line"], row["new_line"], "".join(text for _, text in row["segments"])) for row in diffing.unified_rows(rows)] == [
        (" ", 1, 1, "keep"),
        ("-", 2, None, "old word here"),
        ("-", 3, None, "gone"),
        ("+", None, 2, "new word here"),
        (" ", 4, 3, "end"),
        ("+", None, 4, "added"),
    ]
