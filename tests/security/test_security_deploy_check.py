"""`manage.py check --deploy` is clean with the production settings that platform/ deploys."""
import os
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
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides={
        "LETHE_ENV": "production",
        "LETHE_SECRET_KEY": secrets.token_urlsafe(60),
        "LETHE_ALLOWED_HOSTS": "lethe.example.com",
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret():
    result = _manage("check", env_overrides={"LETHE_ENV": "production", "LETHE_ALLOWED_HOSTS": "lethe.example.com"})
    assert result.returncode != 0
    assert "LETHE_SECRET_KEY must be set" in result.stderr
