"""The one settings object: every STT_ variable is a field of it, read only in stt/config.py, with one default each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stt.config import (
    SETTINGS_CLASSES,
    CliSettings,
    IngestSettings,
    Settings,
    StackSettings,
    env_names,
)

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("include", "dags", "plugins") for p in (REPO / folder).rglob("*.py"))
CONFIG = REPO / "include" / "stt" / "config.py"
# STT_ names in the sources that are no settings: an error code, and the mark devstack puts in its processes' environment.
NOT_SETTINGS = {"STT_ERROR", "STT_STACK_HOME"}
ENV_READ = re.compile(r"""(\.get\(|getenv\(|setdefault\(|environ\[)\s*["'](STT_[A-Z_]+|WHISPER_CLI)["']""")


@pytest.fixture
def clean_env(monkeypatch):
    """No setting in the environment (conftest sets a few for the whole session)."""
    for name in env_names():
        monkeypatch.delenv(name, raising=False)


def test_every_stt_variable_in_the_sources_is_a_setting():
    mentioned = {name for path in SOURCES for name in re.findall(r"\bSTT_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())}
    assert mentioned - NOT_SETTINGS - set(env_names()) == set()
    assert "WHISPER_CLI" in env_names()


def test_only_the_config_module_reads_the_environment_for_a_setting():
    readers = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path in SOURCES if path != CONFIG
               for n, line in enumerate(path.read_text().splitlines(), 1) if ENV_READ.search(line)]
    assert readers == []


def test_each_variable_is_one_field_with_one_default():
    fields = [field.validation_alias for cls in SETTINGS_CLASSES for field in cls.model_fields.values()]
    assert all(name and (name.startswith("STT_") or name == "WHISPER_CLI") for name in fields)
    assert len(fields) == len(set(fields)), "a variable read by two fields"


def test_defaults(clean_env):
    settings = Settings.from_env()
    assert settings.whisper.default_model == "base" and settings.whisper.default_language() == "auto"
    assert settings.ingest_conf() == {"language": "auto", "model": "base"}
    assert settings.storage.local_root is None and settings.storage.allowed_sources == () and settings.inbox_uris() == ()
    assert (settings.ingest.cron(), settings.reconcile.cron()) == ("*/2 * * * *", "*/10 * * * *")
    assert settings.retries.task_args()["retries"] == 3 and settings.retries.task_args()["retry_delay"].total_seconds() == 10
    assert settings.events_conn_id() == settings.storage.s3_conn_id == "stt_s3"
    assert settings.airflow.preload_task_modules and settings.airflow.worker_id == ""
    assert CliSettings().airflow_user == "admin" and StackSettings().airflow_port == "8080"


def test_values_from_the_environment(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("STT_ALLOWED_SOURCES", " s3://media/inbox/, file:///srv/audio/ ,")
    monkeypatch.setenv("STT_INBOX_URIS", "s3://a/in/,s3://b/in/")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path / "x" / ".."))
    monkeypatch.setenv("STT_OUTPUT_PREFIX", "/out/")
    monkeypatch.setenv("STT_WHISPER_THREADS", "3")
    monkeypatch.setenv("STT_PRELOAD_TASK_MODULES", "off")
    monkeypatch.setenv("STT_INGEST_SCHEDULE", "none")
    monkeypatch.setenv("STT_RECONCILE_SCHEDULE", "")
    monkeypatch.setenv("STT_EVENTS_AWS_CONN_ID", "aws_events")
    monkeypatch.setenv("STT_DEFAULT_MODEL", "tiny.en")
    monkeypatch.setenv("STT_INGEST_PROMPT", "Acme, Kubernetes")
    monkeypatch.setenv("WHISPER_CLI", "")  # empty counts as unset
    settings = Settings.from_env()
    assert settings.storage.allowed_sources == ("s3://media/inbox/", "file:///srv/audio/")
    assert settings.inbox_uris() == ("s3://a/in/", "s3://b/in/")
    assert settings.storage.local_root == tmp_path.resolve() and settings.storage.output_prefix == "out"
    assert settings.whisper.threads == 3 and not settings.airflow.preload_task_modules
    assert settings.ingest.cron() is None and settings.reconcile.cron() is None
    assert settings.events_conn_id() == "aws_events"
    assert settings.ingest_conf() == {"language": "en", "model": "tiny.en", "prompt": "Acme, Kubernetes"}
    assert settings.whisper.cli == Settings.model_fields["whisper"].default_factory().cli


def test_derived_values(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("STT_WHISPER_THREADS", "2")
    settings = Settings.from_env()
    assert settings.inbox_uris() == (f"file://{tmp_path}/inbox/",)
    assert settings.whisper.model_path("tiny.en").name == "ggml-tiny.en.bin"
    assert "silero-v6.2.0" not in settings.whisper.installed_models()
    assert settings.whisper.timeout(5) == 120 and settings.whisper.timeout(60) == 600
    assert settings.transcribe_timeout_s() == settings.whisper.timeout(600 + 2 * 30) + 120
    assert settings.whisper.lanes() >= 1
    assert settings.updated(whisper={"transcribe_lanes": 5}).whisper.lanes() == 5


def test_a_copy_changes_only_what_it_names_and_checks_the_names(clean_env, tmp_path):
    settings = Settings.from_env()
    copy = settings.updated(storage={"local_root": tmp_path}, chunking={"seconds": 12.0})
    assert (copy.storage.local_root, copy.chunking.seconds) == (tmp_path, 12.0)
    assert (settings.storage.local_root, settings.chunking.seconds) == (None, 30.0)
    assert copy.whisper == settings.whisper
    with pytest.raises(ValueError, match="no field"):
        settings.updated(storage={"chunk_seconds": 1})
    with pytest.raises(ValueError, match="no settings group"):
        settings.updated(paths={})


def test_settings_are_frozen(clean_env):
    settings = Settings.from_env()
    with pytest.raises(Exception):
        settings.whisper = None
    with pytest.raises(Exception):
        settings.ingest.max_per_run = 1
    assert IngestSettings.model_config["frozen"]
