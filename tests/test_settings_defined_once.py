"""Every LETHE_* setting has one default, in config/settings.py: code reads ``settings.NAME``,
never ``getattr(settings, NAME, default)`` with a second default that could drift from it."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = [path for path in ROOT.iterdir() if path.is_dir() and (path / "apps.py").exists()]


def _sources():
    return [path for directory in SOURCE_DIRS for path in sorted(directory.rglob("*.py")) if "migrations" not in path.parts]


def test_no_code_gives_a_setting_a_default_of_its_own():
    pattern = re.compile(r"getattr\(\s*settings\s*,[^)]*,")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}" for path in _sources() for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if pattern.search(line)
    ]

    assert offenders == []


def test_every_lethe_setting_the_code_reads_is_defined_in_the_settings_module():
    used = {name for path in _sources() for name in re.findall(r"settings\.(LETHE_[A-Z0-9_]+)", path.read_text(encoding="utf-8"))}

    assert sorted(name for name in used if not hasattr(settings, name)) == []
    assert len(used) > 20
