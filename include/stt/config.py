"""Settings of the pipeline, read from the environment at call time (never at import)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

LANGUAGES = ("auto", "en", "vi")

# Never media: refused by name before anything is downloaded. Any other name is judged by its content.
REFUSED_EXTENSIONS = frozenset({".exe", ".dll", ".so", ".bin", ".msi", ".bat", ".sh", ".zip", ".gz", ".tar", ".7z", ".rar",
                                ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".txt", ".csv", ".json", ".xml", ".html"})


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    """Every knob of the pipeline; `Settings.from_env()` is the one place they are read."""

    s3_conn_id: str = "stt_s3"
    mongo_conn_id: str = "stt_mongo"
    mongo_db: str = "stt"
    jobs_collection: str = "jobs"
    whisper_cli: Path = REPO_ROOT / "whisper" / "bin" / "whisper-cli"
    models_dir: Path = REPO_ROOT / "whisper" / "models"
    default_model: str = "base"  # multilingual: the default language is auto (detected)
    local_root: Path | None = None
    allowed_sources: tuple[str, ...] = ()  # URI prefixes sources must lie under (any s3:// bucket and STT_LOCAL_ROOT when empty)
    scratch_dir: Path = Path(tempfile.gettempdir()) / "stt-scratch"
    inbox_prefix: str = "inbox"
    output_prefix: str = "transcripts"
    work_prefix: str = "work"
    chunk_seconds: float = 30.0
    chunking: str = "silence"
    chunk_min_s: float = 15.0
    chunk_max_s: float = 30.0
    chunk_overlap_s: float = 6.0
    silence_min_s: float = 0.3
    silence_below_speech_db: float = 35.0
    silence_keep_s: float = 1.0
    vad_model: str = "silero-v6.2.0"
    whisper_threads: int = 1
    whisper_nice: int = 10  # whisper-cli runs this much below normal CPU priority: orchestration never waits behind it
    word_timing: str = "dtw"  # whisper.WORD_TIMINGS: dtw (exact word times, slower) or tokens (whisper's own)
    whisper_pool: str = "default_pool"
    steps_pool: str = "default_pool"
    transcribe_lanes: int = 0  # whisper tasks one job may run at once; 0: this machine's cores / whisper_threads
    batch_max_s: float = 600.0
    batch_min_s: float = 60.0
    max_active_jobs: int = 16
    preload_task_modules: bool = True  # import task modules where task processes are forked (scheduler plugin, Celery workers)
    whisper_timeout_factor: float = 10.0
    whisper_timeout_min_s: float = 120.0
    decode_timeout_s: float = 600.0
    max_file_bytes: int = 2 * 1024**3
    max_duration_s: float = 6 * 3600.0
    min_duration_s: float = 0.3

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        d = cls()
        local_root = env.get("STT_LOCAL_ROOT")
        return cls(
            s3_conn_id=env.get("STT_S3_CONN_ID", d.s3_conn_id),
            mongo_conn_id=env.get("STT_MONGO_CONN_ID", d.mongo_conn_id),
            mongo_db=env.get("STT_MONGO_DB", d.mongo_db),
            jobs_collection=env.get("STT_JOBS_COLLECTION", d.jobs_collection),
            whisper_cli=Path(env.get("WHISPER_CLI") or d.whisper_cli),
            models_dir=Path(env.get("STT_MODELS_DIR") or d.models_dir),
            default_model=env.get("STT_DEFAULT_MODEL", d.default_model),
            local_root=Path(local_root).resolve() if local_root else None,
            allowed_sources=tuple(p.strip() for p in env.get("STT_ALLOWED_SOURCES", "").split(",") if p.strip()),
            scratch_dir=Path(env.get("STT_SCRATCH_DIR") or d.scratch_dir),
            inbox_prefix=env.get("STT_INBOX_PREFIX", d.inbox_prefix).strip("/"),
            output_prefix=env.get("STT_OUTPUT_PREFIX", d.output_prefix).strip("/"),
            work_prefix=env.get("STT_WORK_PREFIX", d.work_prefix).strip("/"),
            chunk_seconds=_float("STT_CHUNK_SECONDS", d.chunk_seconds),
            chunking=env.get("STT_CHUNKING") or d.chunking,
            chunk_min_s=_float("STT_CHUNK_MIN_S", d.chunk_min_s),
            chunk_max_s=_float("STT_CHUNK_MAX_S", d.chunk_max_s),
            chunk_overlap_s=_float("STT_CHUNK_OVERLAP_S", d.chunk_overlap_s),
            silence_min_s=_float("STT_SILENCE_MIN_S", d.silence_min_s),
            silence_below_speech_db=_float("STT_SILENCE_BELOW_SPEECH_DB", d.silence_below_speech_db),
            silence_keep_s=_float("STT_SILENCE_KEEP_S", d.silence_keep_s),
            vad_model=env.get("STT_VAD_MODEL") or d.vad_model,
            whisper_threads=_int("STT_WHISPER_THREADS", d.whisper_threads),
            whisper_nice=_int("STT_WHISPER_NICE", d.whisper_nice),
            word_timing=env.get("STT_WORD_TIMING") or d.word_timing,
            whisper_pool=env.get("STT_WHISPER_POOL") or d.whisper_pool,
            steps_pool=env.get("STT_STEPS_POOL") or d.steps_pool,
            transcribe_lanes=_int("STT_TRANSCRIBE_LANES", d.transcribe_lanes),
            batch_max_s=_float("STT_BATCH_MAX_S", d.batch_max_s),
            batch_min_s=_float("STT_BATCH_MIN_S", d.batch_min_s),
            max_active_jobs=_int("STT_MAX_ACTIVE_JOBS", d.max_active_jobs),
            preload_task_modules=env.get("STT_PRELOAD_TASK_MODULES", "1").strip().lower() not in ("0", "false", "no", "off"),
            whisper_timeout_factor=_float("STT_WHISPER_TIMEOUT_FACTOR", d.whisper_timeout_factor),
            whisper_timeout_min_s=_float("STT_WHISPER_TIMEOUT_MIN_S", d.whisper_timeout_min_s),
            decode_timeout_s=_float("STT_DECODE_TIMEOUT_S", d.decode_timeout_s),
            max_file_bytes=_int("STT_MAX_FILE_BYTES", d.max_file_bytes),
            max_duration_s=_float("STT_MAX_DURATION_S", d.max_duration_s),
            min_duration_s=_float("STT_MIN_DURATION_S", d.min_duration_s),
        )

    def model_path(self, model: str) -> Path:
        """The ggml file of a model name such as `tiny.en`, `base` or `base-q5_1`."""
        return self.models_dir / f"ggml-{model}.bin"

    def installed_models(self) -> list[str]:
        """Names of the transcription models present in `models_dir` (VAD models excluded)."""
        if not self.models_dir.is_dir():
            return []
        names = (p.name[len("ggml-") : -len(".bin")] for p in self.models_dir.glob("ggml-*.bin"))
        return sorted(n for n in names if not n.startswith("silero"))

    def lanes(self) -> int:
        """How many whisper tasks of one job should run side by side (batches.plan_batches)."""
        return self.transcribe_lanes or max(1, (os.cpu_count() or 1) // max(1, self.whisper_threads))

    def whisper_timeout(self, chunk_seconds: float) -> float:
        """Wall-clock limit for one whisper-cli run on a chunk of this length."""
        return max(self.whisper_timeout_min_s, chunk_seconds * self.whisper_timeout_factor)
