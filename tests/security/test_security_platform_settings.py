"""What platform/ deploys is the production configuration, and it passes ``check --deploy``.

The deploy check runs with exactly the variables of platform/env.example (plus PATH), not with
values a test picked, so an example that drifts from the settings fails here.
"""
import os
import re
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


def test_env_example_passes_check_deploy_with_exactly_its_variables(tmp_path):
    # given the example environment, as compose.yaml's env_file hands it to every container
    env = {**_env_example(), "PATH": os.environ["PATH"], "LETHE_VAR_DIR": str(tmp_path / "var")}

    # when Django's deployment checklist runs with it
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    # then it is production mode and clean
    assert env["LETHE_ENV"] == "production"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


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
