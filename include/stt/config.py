"""Settings of the pipeline and of its tools: every `STT_*` variable is read here, at call time (never at import).

`Settings.from_env()` is the pipeline's one settings object, in groups (`settings.storage.local_root`,
`settings.whisper.threads`, ...). Each field names its environment variable beside its one default; values
derived from several of them are methods. The dev tools' own settings (`CliSettings`, `StackSettings`,
`LogSettings`, `BenchSettings`) are separate so that the pipeline never depends on them.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

LANGUAGES = ("auto", "en", "vi")

# Never media: refused by name before anything is downloaded. Any other name is judged by its content.
REFUSED_EXTENSIONS = frozenset({".exe", ".dll", ".so", ".bin", ".msi", ".bat", ".sh", ".zip", ".gz", ".tar", ".7z", ".rar",
                                ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".txt", ".csv", ".json", ".xml", ".html"})

CommaList = Annotated[tuple[str, ...], NoDecode]  # `a, b,` in the environment → ("a", "b")


def env(name: str, default: Any = None, **kwargs) -> Any:
    """A field read from the environment variable `name` (and only from it)."""
    return Field(default, validation_alias=name, **kwargs)


def cron_or_none(value: str) -> str | None:
    """A DAG's cron schedule; `none`, `off` or empty: trigger-only."""
    value = value.strip()
    return None if value.lower() in ("", "none", "off") else value


def _comma_list(value: Any) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p.strip())


class Group(BaseSettings):
    """One group of settings; an empty variable counts as unset."""

    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True)


class StorageSettings(Group):
    """Where recordings, transcripts, work files and job records live."""

    s3_conn_id: str = env("STT_S3_CONN_ID", "stt_s3")
    mongo_conn_id: str = env("STT_MONGO_CONN_ID", "stt_mongo")
    mongo_db: str = env("STT_MONGO_DB", "stt")
    jobs_collection: str = env("STT_JOBS_COLLECTION", "jobs")
    local_root: Path | None = env("STT_LOCAL_ROOT")
    allowed_sources: CommaList = env("STT_ALLOWED_SOURCES", ())  # URI prefixes sources must lie under (any s3:// bucket and local_root when empty)
    scratch_dir: Path = env("STT_SCRATCH_DIR", Path(tempfile.gettempdir()) / "stt-scratch")
    inbox_prefix: str = env("STT_INBOX_PREFIX", "inbox")
    output_prefix: str = env("STT_OUTPUT_PREFIX", "transcripts")
    work_prefix: str = env("STT_WORK_PREFIX", "work")

    @field_validator("local_root")
    @classmethod
    def _resolved(cls, value: Path | None) -> Path | None:
        return value.resolve() if value else None

    @field_validator("allowed_sources", mode="before")
    @classmethod
    def _split(cls, value: Any) -> tuple[str, ...]:
        return _comma_list(value)

    @field_validator("inbox_prefix", "output_prefix", "work_prefix")
    @classmethod
    def _no_slashes(cls, value: str) -> str:
        return value.strip("/")


class WhisperSettings(Group):
    """whisper.cpp: the binary, the models and how each whisper-cli process runs."""

    cli: Path = env("WHISPER_CLI", REPO_ROOT / "whisper" / "bin" / "whisper-cli")
    models_dir: Path = env("STT_MODELS_DIR", REPO_ROOT / "whisper" / "models")
    default_model: str = env("STT_DEFAULT_MODEL", "base")  # multilingual: the default language is auto (detected)
    threads: int = env("STT_WHISPER_THREADS", 1)
    nice: int = env("STT_WHISPER_NICE", 10)  # whisper-cli runs this much below normal CPU priority: orchestration never waits behind it
    word_timing: str = env("STT_WORD_TIMING", "dtw")  # whisper.WORD_TIMINGS: dtw (exact word times, slower) or tokens (whisper's own); for jobs publishing JSON
    transcribe_lanes: int = env("STT_TRANSCRIBE_LANES", 0)  # whisper tasks one job may run at once; 0: this machine's cores / threads
    timeout_factor: float = env("STT_WHISPER_TIMEOUT_FACTOR", 10.0)
    timeout_min_s: float = env("STT_WHISPER_TIMEOUT_MIN_S", 120.0)

    def model_path(self, model: str) -> Path:
        """The ggml file of a model name such as `tiny.en`, `base` or `base-q5_1`."""
        return self.models_dir / f"ggml-{model}.bin"

    def installed_models(self) -> list[str]:
        """Names of the transcription models present in `models_dir` (VAD models excluded)."""
        if not self.models_dir.is_dir():
            return []
        names = (p.name[len("ggml-") : -len(".bin")] for p in self.models_dir.glob("ggml-*.bin"))
        return sorted(n for n in names if not n.startswith("silero"))

    def default_language(self) -> str:
        """`auto` (detected), or `en` when the default model is English-only and cannot detect."""
        from stt.whisper import is_english_only

        return "en" if is_english_only(self.default_model) else "auto"

    def lanes(self) -> int:
        """How many whisper tasks of one job should run side by side (batches.plan_batches)."""
        return self.transcribe_lanes or max(1, (os.cpu_count() or 1) // max(1, self.threads))

    def timeout(self, chunk_seconds: float) -> float:
        """Wall-clock limit for one whisper-cli run on a chunk of this length."""
        return max(self.timeout_min_s, chunk_seconds * self.timeout_factor)


class ChunkingSettings(Group):
    """How a recording is cut into chunks and the chunks grouped into batches (one whisper task each)."""

    method: str = env("STT_CHUNKING", "silence")
    seconds: float = env("STT_CHUNK_SECONDS", 30.0)
    min_s: float = env("STT_CHUNK_MIN_S", 15.0)
    max_s: float = env("STT_CHUNK_MAX_S", 30.0)
    overlap_s: float = env("STT_CHUNK_OVERLAP_S", 6.0)
    silence_min_s: float = env("STT_SILENCE_MIN_S", 0.3)
    silence_below_speech_db: float = env("STT_SILENCE_BELOW_SPEECH_DB", 35.0)
    silence_keep_s: float = env("STT_SILENCE_KEEP_S", 1.0)
    hear_again_min_s: float = env("STT_HEAR_AGAIN_MIN_S", 3.0)  # speech this long that whisper left without words is decoded again; 0: never
    hear_again_edge_min_s: float = env("STT_HEAR_AGAIN_EDGE_MIN_S", 1.0)  # the same before a chunk's first word or after its last
    vad_model: str = env("STT_VAD_MODEL", "silero-v6.2.0")
    batch_max_s: float = env("STT_BATCH_MAX_S", 600.0)
    batch_min_s: float = env("STT_BATCH_MIN_S", 60.0)
    batch_rounds: int = env("STT_BATCH_ROUNDS", 2)  # batches per whisper slot for a long recording (each at least batch_min_s)


class LimitsSettings(Group):
    """What a recording may be: refused beyond these."""

    max_file_bytes: int = env("STT_MAX_FILE_BYTES", 2 * 1024**3)
    max_duration_s: float = env("STT_MAX_DURATION_S", 6 * 3600.0)
    min_duration_s: float = env("STT_MIN_DURATION_S", 0.3)
    decode_timeout_s: float = env("STT_DECODE_TIMEOUT_S", 600.0)


class AirflowSettings(Group):
    """How the DAGs run in Airflow: pools, concurrency, workers."""

    whisper_pool: str = env("STT_WHISPER_POOL", "default_pool")
    steps_pool: str = env("STT_STEPS_POOL", "default_pool")
    max_active_jobs: int = env("STT_MAX_ACTIVE_JOBS", 16)
    preload_task_modules: bool = env("STT_PRELOAD_TASK_MODULES", True)  # import task modules where task processes are forked
    worker_id: str = env("STT_WORKER_ID", "")  # the worker's name in job records; empty: host:pid


class RetrySettings(Group):
    """Retries of failed tasks, with exponential backoff."""

    retries: int = env("STT_RETRIES", 3)
    delay_s: float = env("STT_RETRY_DELAY_S", 10.0)
    max_delay_s: float = env("STT_MAX_RETRY_DELAY_S", 300.0)

    def task_args(self) -> dict:
        """The retry part of a DAG's default_args."""
        return {
            "retries": self.retries,
            "retry_delay": timedelta(seconds=self.delay_s),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(seconds=self.max_delay_s),
        }


class IngestSettings(Group):
    """stt_ingest: which inboxes it lists, how often, how much per run, and the run conf it gives new jobs."""

    model_config = SettingsConfigDict(env_ignore_empty=False)  # an empty schedule means trigger-only

    inbox_uris: CommaList = env("STT_INBOX_URIS", ())  # empty: <local_root>/<inbox_prefix>/ (Settings.inbox_uris)
    schedule: str = env("STT_INGEST_SCHEDULE", "*/2 * * * *")
    max_per_run: int = env("STT_INGEST_MAX_PER_RUN", 50)
    lease_s: float = env("STT_INGEST_LEASE_S", 900.0)
    min_age_s: float = env("STT_INGEST_MIN_AGE_S", 2.0)
    language: str = env("STT_INGEST_LANGUAGE", "")  # empty: whisper.default_language()
    model: str = env("STT_INGEST_MODEL", "")  # empty: whisper.default_model
    prompt: str = env("STT_INGEST_PROMPT", "")  # whisper's prompt for every ingested job (whisper.check_prompt)

    @field_validator("inbox_uris", mode="before")
    @classmethod
    def _split(cls, value: Any) -> tuple[str, ...]:
        return _comma_list(value)

    def cron(self) -> str | None:
        return cron_or_none(self.schedule)


class EventsSettings(Group):
    """stt_ingest_events: S3 notifications through SQS (the DAG exists only when a queue is set)."""

    sqs_queue: str = env("STT_EVENTS_SQS_QUEUE", "")
    aws_conn_id: str = env("STT_EVENTS_AWS_CONN_ID", "")  # empty: storage.s3_conn_id (Settings.events_conn_id)
    poll_s: int = env("STT_EVENTS_POLL_S", 5)


class ReconcileSettings(Group):
    """stt_reconcile: settles jobs left PROCESSING whose run has ended or is gone."""

    model_config = SettingsConfigDict(env_ignore_empty=False)  # an empty schedule means trigger-only

    schedule: str = env("STT_RECONCILE_SCHEDULE", "*/10 * * * *")
    idle_s: float = env("STT_RECONCILE_IDLE_S", 300.0)

    def cron(self) -> str | None:
        return cron_or_none(self.schedule)


class Settings(BaseModel):
    """Every knob of the pipeline, in groups; `Settings.from_env()` (or `Settings()`) reads them all."""

    model_config = ConfigDict(frozen=True)

    storage: StorageSettings = Field(default_factory=StorageSettings)
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)

    @classmethod
    def from_env(cls) -> "Settings":
        return cls()

    def updated(self, **groups: dict) -> "Settings":
        """A copy with some fields changed, by group: `settings.updated(storage={"local_root": root})` (values are taken
        as given, of the fields' types: no parsing)."""
        unknown = set(groups) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"no settings group {sorted(unknown)}")
        for name, fields in groups.items():
            extra = set(fields) - set(type(getattr(self, name)).model_fields)
            if extra:
                raise ValueError(f"settings group {name!r} has no field {sorted(extra)}")
        return self.model_copy(update={name: getattr(self, name).model_copy(update=fields) for name, fields in groups.items()})

    def transcribe_timeout_s(self) -> float:
        """Wall-clock limit of one transcribe task: whisper's limit for a batch of batch_max_s and two of the longest
        chunks more, plus two minutes to start."""
        return self.whisper.timeout(self.chunking.batch_max_s + 2 * self.chunking.max_s) + 120

    def inbox_uris(self) -> tuple[str, ...]:
        """The inboxes stt_ingest lists: ingest.inbox_uris, else the storage root's inbox folder (none without one)."""
        if self.ingest.inbox_uris:
            return self.ingest.inbox_uris
        if self.storage.local_root:
            return (f"file://{self.storage.local_root}/{self.storage.inbox_prefix}/",)
        return ()

    def ingest_conf(self) -> dict:
        """The language, model and prompt of the jobs ingestion starts (the trigger form's defaults unless set for ingestion)."""
        return {"language": self.ingest.language or self.whisper.default_language(), "model": self.ingest.model or self.whisper.default_model,
                **({"prompt": self.ingest.prompt} if self.ingest.prompt else {})}

    def events_conn_id(self) -> str:
        """The Airflow AWS connection the SQS watcher uses."""
        return self.events.aws_conn_id or self.storage.s3_conn_id


# ----- the tools' own settings (not the pipeline's) -----

class LogSettings(Group):
    """Console logging of processes that have no logging of their own (the CLI, scripts)."""

    level: str = env("STT_LOG_LEVEL", "INFO")


class CliSettings(Group):
    """The `stt` command: where Airflow, MongoDB and the upload folder are (empty: the local stack's)."""

    airflow_url: str = env("STT_AIRFLOW_URL", "")  # empty: the local stack's, else http://127.0.0.1:8080
    airflow_user: str = env("STT_AIRFLOW_USER", "admin")
    airflow_password: str = env("STT_AIRFLOW_PASSWORD", "")  # empty: the local stack's generated one
    mongo_url: str = env("STT_MONGO_URL", "")  # empty: the local stack's nx-27017, else mongodb://127.0.0.1:27017
    upload_uri: str = env("STT_UPLOAD_URI", "")  # empty: the local stack's inbox folder


class StackSettings(Group):
    """The local stack of scripts/run-local.sh."""

    home: Path = env("STT_HOME", REPO_ROOT / "local")
    airflow_port: str = env("STT_AIRFLOW_PORT", "8080")  # checked by devstack, which says how to fix a wrong one


class BenchSettings(Group):
    """Benchmarks and test data: where generated and fetched recordings are kept between runs."""

    cache_dir: Path = env("STT_CACHE_DIR", Path.home() / ".cache" / "stt-pipeline")


SETTINGS_CLASSES = (StorageSettings, WhisperSettings, ChunkingSettings, LimitsSettings, AirflowSettings, RetrySettings,
                    IngestSettings, EventsSettings, ReconcileSettings, LogSettings, CliSettings, StackSettings, BenchSettings)


def env_names() -> dict[str, tuple[type, str]]:
    """Every environment variable read here → (its settings class, its field)."""
    return {field.validation_alias: (cls, name) for cls in SETTINGS_CLASSES for name, field in cls.model_fields.items()}
