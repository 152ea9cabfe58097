"""The steps of one transcription job, free of Airflow: validate → chunk → transcribe (per chunk) → merge → publish.

Each step takes small dicts and returns small dicts (they travel as XCom); audio, chunks and chunk
results travel through storage under the job's work folder.
"""

from __future__ import annotations

import json
import shutil
import time
import wave
from contextlib import contextmanager
from pathlib import Path

from stt import audio, storage, whisper
from stt.config import LANGUAGES, Settings
from stt.errors import InvalidAudio, InvalidParameter, SourceNotFound
from stt.formats import FORMATS, render
from stt.jobs import JobStore
from stt.log import logger
from stt.merge import merge_chunks


@contextmanager
def timed_step(store: JobStore, job_id: str, step: str, chunk: int | None = None):
    """Log a step's start and end with its duration, and record the duration on the job."""
    log = logger.bind(job_id=job_id, chunk=chunk)
    log.info("{} started", step)
    started = time.monotonic()
    yield log
    seconds = time.monotonic() - started
    log.info("{} finished in {:.2f}s", step, seconds)
    store.add_timing(job_id, step if chunk is None else f"{step}.{chunk}", seconds)


def scratch_dir(settings: Settings, job_id: str) -> Path:
    return settings.scratch_dir / job_id


def check_params(params: dict, settings: Settings) -> dict:
    """Normalise and check trigger parameters; InvalidParameter/ModelNotFound on a bad value."""
    language = (params.get("language") or "auto").strip().lower()
    if language not in LANGUAGES:
        raise InvalidParameter(f"language {language!r} is not supported; choose one of {', '.join(LANGUAGES)}", code="UNSUPPORTED_LANGUAGE")
    model = (params.get("model") or settings.default_model).strip()
    whisper.whisper_language(model, language)
    whisper.check_installation(settings.whisper_cli, settings.model_path(model))
    formats = list(params.get("formats") or FORMATS)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InvalidParameter(f"unknown output formats {unknown}; choose from {list(FORMATS)}", code="INVALID_FORMAT")
    return {"language": language, "model": model, "formats": formats}


def validate(params: dict, *, job_id: str, dag_id: str, run_id: str, settings: Settings, store: JobStore) -> dict:
    """Register the job, check parameters and the source object, probe its audio."""
    source = params.get("source") or ""
    store.start(job_id, source=source, language=params.get("language") or "auto", model=params.get("model") or settings.default_model, dag_id=dag_id, run_id=run_id)
    with timed_step(store, job_id, "validate") as log:
        checked = check_params(params, settings)
        location = storage.locate(source, settings)
        try:
            size = storage.stat_size(location.uri, settings)
        except FileNotFoundError as exc:
            raise SourceNotFound(f"source object {location.uri} does not exist") from exc
        if size > settings.max_file_bytes:
            raise InvalidAudio(f"source is {size} bytes, over the limit of {settings.max_file_bytes}", code="FILE_TOO_LARGE")
        local = storage.download(location.uri, scratch_dir(settings, job_id) / f"source{location.extension}", settings)
        info = audio.probe(local)
        if info.duration_s > settings.max_duration_s:
            raise InvalidAudio(f"audio lasts {info.duration_s:.0f}s, over the limit of {settings.max_duration_s:.0f}s", code="DURATION_TOO_LONG")
        store.record_audio(job_id, size_bytes=size, audio=info.as_dict())
        log.info("source {} ok: {} bytes, {:.2f}s of {} audio, {} Hz, {} channel(s)", location.uri, size, info.duration_s, info.codec, info.sample_rate, info.channels)
    return {"job_id": job_id, "source": location.uri, **checked, "duration_s": info.duration_s, "size_bytes": size}


def local_source(job: dict, settings: Settings) -> Path:
    """The source in local scratch: reused when this machine already downloaded it whole, else fetched."""
    location = storage.locate(job["source"], settings)
    path = scratch_dir(settings, job["job_id"]) / f"source{location.extension}"
    if path.is_file() and path.stat().st_size == job["size_bytes"]:
        return path
    return storage.download(location.uri, path, settings)


def chunk(job: dict, *, settings: Settings, store: JobStore) -> list[dict]:
    """Decode the source once to 16 kHz mono, cut it into chunks and put them in the work folder."""
    job_id = job["job_id"]
    with timed_step(store, job_id, "chunk") as log:
        location = storage.locate(job["source"], settings)
        work = scratch_dir(settings, job_id)
        wav = audio.decode_to_wav(local_source(job, settings), work / "decoded.wav", settings.decode_timeout_s)
        with wave.open(str(wav), "rb") as decoded:
            duration = decoded.getnframes() / decoded.getframerate()
        plans = audio.plan_fixed_chunks(duration, settings.chunk_seconds)
        files = audio.cut_chunks(wav, plans, work / "chunks")
        refs = []
        for plan, path in zip(plans, files):
            uri = storage.upload(path, location.work_uri(settings, job_id, "chunks", path.name), settings)
            refs.append({**plan.as_dict(), "uri": uri})
        store.set_chunks(job_id, [p.as_dict() for p in plans])
        log.info("{:.2f}s of audio cut into {} chunk(s) of about {:.1f}s", duration, len(plans), settings.chunk_seconds)
    return refs


def transcribe(job: dict, chunk_ref: dict, *, settings: Settings, store: JobStore, attempt: int = 1, worker: str = "") -> dict:
    """Run whisper-cli on one chunk and store its segments (times relative to the chunk) in the work folder."""
    job_id, index = job["job_id"], chunk_ref["index"]
    store.chunk_started(job_id, index, attempt=attempt, worker=worker)
    with timed_step(store, job_id, "transcribe", chunk=index) as log:
        local = scratch_dir(settings, job_id) / f"try-{attempt}" / Path(chunk_ref["uri"]).name
        storage.download(chunk_ref["uri"], local, settings)
        length = chunk_ref["end_s"] - chunk_ref["start_s"]
        run = whisper.transcribe(
            local,
            cli=settings.whisper_cli,
            model_path=settings.model_path(job["model"]),
            language=whisper.whisper_language(job["model"], job["language"]),
            threads=settings.whisper_threads,
            timeout_s=settings.whisper_timeout(length),
        )
        result = {**{k: chunk_ref[k] for k in ("index", "start_s", "end_s", "cut")}, **run.as_dict()}
        location = storage.locate(job["source"], settings)
        result_uri = storage.write_text(location.work_uri(settings, job_id, "results", f"chunk-{index:05d}.json"), json.dumps(result, ensure_ascii=False), settings)
        shutil.rmtree(local.parent, ignore_errors=True)
        store.chunk_completed(job_id, index, seconds=run.seconds, language=run.language, segments=len(run.segments))
        log.info("chunk {} ({:.1f}s audio) → {} segment(s), language {}, whisper {:.2f}s ({:.1f}x real time)", index, length, len(run.segments), run.language or "?", run.seconds, length / max(run.seconds, 1e-6))
    return {"index": index, "result_uri": result_uri}


def merge(job: dict, results: list[dict], *, settings: Settings, store: JobStore) -> dict:
    """Join the chunk results into one transcript in the work folder."""
    job_id = job["job_id"]
    with timed_step(store, job_id, "merge") as log:
        chunks = [json.loads(storage.read_text(r["result_uri"], settings)) for r in results]
        merged = merge_chunks(chunks)
        transcript = {
            "job_id": job_id,
            "source": job["source"],
            "model": job["model"],
            "language": merged["language"] or (job["language"] if job["language"] != "auto" else ""),
            "language_requested": job["language"],
            "duration_s": round(job["duration_s"], 3),
            "text": merged["text"],
            "segments": merged["segments"],
            "chunks": merged["chunks"],
        }
        location = storage.locate(job["source"], settings)
        uri = storage.write_text(location.work_uri(settings, job_id, "transcript.json"), json.dumps(transcript, ensure_ascii=False), settings)
        log.info("merged {} chunk(s) into {} segment(s), language {}", len(chunks), len(merged["segments"]), transcript["language"] or "?")
    return {"transcript_uri": uri, "segments": len(merged["segments"])}


def publish(job: dict, merged: dict, *, settings: Settings, store: JobStore) -> dict:
    """Write the transcript in every requested format next to the source, complete the job, clean up."""
    job_id = job["job_id"]
    with timed_step(store, job_id, "publish") as log:
        transcript = json.loads(storage.read_text(merged["transcript_uri"], settings))
        location = storage.locate(job["source"], settings)
        outputs = {fmt: storage.write_text(location.output_uri(settings, fmt), render(transcript, fmt), settings) for fmt in job["formats"]}
        log.info("published {}", ", ".join(outputs.values()))
    store.complete(job_id, outputs=outputs, language=transcript["language"], segments=len(transcript["segments"]), text_chars=len(transcript["text"]))
    cleanup(job, settings)
    return outputs


def cleanup(job: dict, settings: Settings) -> None:
    """Remove the job's work folder in storage and its local scratch."""
    location = storage.locate(job["source"], settings)
    storage.delete_tree(location.work_uri(settings, job["job_id"]), settings)
    shutil.rmtree(scratch_dir(settings, job["job_id"]), ignore_errors=True)
