"""What platform/ deploys is the production configuration, and it passes ``check --deploy``
once its placeholder secret is replaced (and fails until then).

The deploy check runs with exactly the variables of platform/env.example (plus PATH, and the
secret a deployer sets), not with values a test picked, so an example that drifts from the
settings fails here.
"""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "platform"


def _env_example():
    variables = {}
    for number, line in enumerate((PLATFORM / "env.example").read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"platform/env.example:{number}: not NAME=value: {line!r}"
        variables[name.strip()] = value.strip()
    return variables


def _check_deploy(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_env_example_passes_check_deploy_with_exactly_its_variables_and_a_real_secret(tmp_path):
    # given the example environment, as compose.yaml's env_file hands it to every container,
    # with the secret a deployer generates as the example says
    env = {**_env_example(), "PATH": os.environ["PATH"], "LETHE_VAR_DIR": str(tmp_path / "var"), "LETHE_SECRET_KEY": secrets.token_urlsafe(64)}

    # when Django's deployment checklist runs with it
    result = _check_deploy(env)

    # then it is production mode and clean
    assert env["LETHE_ENV"] == "production"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_fails_while_the_example_placeholder_secret_is_left_in(tmp_path):
    env = {**_env_example(), "PATH": os.environ["PATH"], "LETHE_VAR_DIR": str(tmp_path / "var")}

    result = _check_deploy(env)

    assert result.returncode == 1
    assert ("(lethe.E002) LETHE_SECRET_KEY is a placeholder that ships with Lethe; anyone can forge sessions, CSRF tokens and password resets with it.") in result.stderr
    assert "System check identified 1 issue (0 silenced)." in result.stderr


def test_every_shipped_placeholder_secret_is_recognised():
    from versions.checks import secret_is_placeholder

    k8s = re.search(r"^  LETHE_SECRET_KEY: (\S+)$", (PLATFORM / "k8s" / "config.example.yaml").read_text(encoding="utf-8"), re.MULTILINE)
    dockerfile = re.search(r"LETHE_SECRET_KEY=(\S+)", (PLATFORM / "Dockerfile").read_text(encoding="utf-8"))
    settings_default = re.search(r'env_str\("LETHE_SECRET_KEY", "([^"]+)"\)', (ROOT / "config" / "settings.py").read_text(encoding="utf-8"))

    shipped = [_env_example()["LETHE_SECRET_KEY"], k8s.group(1), dockerfile.group(1), settings_default.group(1)]
    assert [secret_is_placeholder(secret) for secret in shipped] == [True] * 4
    assert not secret_is_placeholder(secrets.token_urlsafe(64))


def test_every_deployment_runs_in_production_mode():
    # compose hands every Lethe container the env file; Kubernetes reads the shared ConfigMap
    compose = (PLATFORM / "compose.yaml").read_text(encoding="utf-8")
    k8s_config = (PLATFORM / "k8s" / "config.example.yaml").read_text(encoding="utf-8")
    workloads = [(PLATFORM / "k8s" / name).read_text(encoding="utf-8") for name in ("web.yaml", "worker-gpu.yaml")]

    assert re.search(r"^  env_file: \.env$", compose, re.MULTILINE)
    assert re.search(r"^  LETHE_ENV: production$", k8s_config, re.MULTILINE)
    assert re.search(r"^  LETHE_SECRET_KEY: ", k8s_config, re.MULTILINE)
    for manifest in workloads:
        assert "name: lethe-config" in manifest and "name: lethe-secrets" in manifest
