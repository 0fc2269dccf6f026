"""`manage.py check --deploy` is clean with the production settings that platform/ deploys."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, env_overrides):
    # A clean deployment environment: none of this test session's settings, nor the async guard
    # the browser tests lift for their session.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "LETHE_ENV": "production",
            "LETHE_SECRET_KEY": secrets.token_urlsafe(60),
            "LETHE_ALLOWED_HOSTS": "lethe.example.com",
            "LETHE_CACHE_URL": "redis://127.0.0.1:6379/1",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_with_the_development_secret():
    # the default a development installation runs with, long enough for the production length check
    development_default = re.search(r'env_str\("LETHE_SECRET_KEY", "([^"]+)"\)', (ROOT / "config" / "settings.py").read_text()).group(1)

    result = _manage(
        "check",
        "--deploy",
        env_overrides={
            "LETHE_ENV": "production",
            "LETHE_SECRET_KEY": development_default,
            "LETHE_ALLOWED_HOSTS": "lethe.example.com",
            "LETHE_CACHE_URL": "redis://127.0.0.1:6379/1",
        },
    )

    assert len(development_default) >= 50
    assert result.returncode == 1
    assert "(lethe.E002) LETHE_SECRET_KEY is a placeholder that ships with Lethe" in result.stderr


def test_check_deploy_warns_when_throttles_count_per_process():
    result = _manage(
        "check",
        "--deploy",
        env_overrides={"LETHE_ENV": "production", "LETHE_SECRET_KEY": secrets.token_urlsafe(60), "LETHE_ALLOWED_HOSTS": "lethe.example.com", "LETHE_CACHE_URL": ""},
    )

    assert "(lethe.W001) The cache is local to each process" in result.stderr


def test_production_refuses_to_start_without_a_secret():
    result = _manage("check", env_overrides={"LETHE_ENV": "production", "LETHE_ALLOWED_HOSTS": "lethe.example.com"})
    assert result.returncode != 0
    assert "LETHE_SECRET_KEY must be set" in result.stderr
