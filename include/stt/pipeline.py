"""The steps of one transcription job, free of Airflow: validate → chunk → transcribe (per chunk) → merge → publish.
The DAG runs validate and chunk as one task (`prepare`), merge and publish as one (`finish`).

Each step takes small dicts and returns small dicts (they travel as XCom); audio, chunks and chunk
results travel through storage under the job's work folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from stt import audio, batches, hearing, procs, storage, whisper
from stt.config import LANGUAGES, REFUSED_EXTENSIONS, Settings
from stt.errors import (InvalidAudio, InvalidParameter, InvalidSource, SourceChanged, SourceNotFound, WhisperCrash, WhisperCrashed,
                        WhisperFailed, WhisperTimeout, WorkFilesGone)
from stt.formats import FORMATS, render
from stt.jobs import COMPLETED, JobStore, check_job_id
from stt.log import logger
from stt.merge import merge_chunks, without_loops
from stt.records import Batch, BatchResult, ChunkRef, ChunkResult, Decoding, Job, JobOptions, Merged


@contextmanager
def timed_step(store: JobStore, job_id: str, step: str, batch: int | None = None):
    """Log a step's start and end with its duration, and record the duration on the job. An error leaving a
    step of the prepare or finish task carries the step's name (`failed_step`, recorded on the job)."""
    log = logger.bind(job_id=job_id, batch=batch)
    log.info("{} started", step)
    started = time.monotonic()
    try:
        yield log
    except Exception as exc:
        if batch is None and not hasattr(exc, "failed_step"):
            exc.failed_step = step  # type: ignore[attr-defined]
        raise
    seconds = time.monotonic() - started
    log.info("{} finished in {:.2f}s", step, seconds)
    store.add_timing(job_id, step if batch is None else f"{step}.batch{batch}", seconds)


def scratch_dir(settings: Settings, job_id: str) -> Path:
    """The job's local scratch folder: inside the scratch root, whatever the id (PathOutsideRoot otherwise)."""
    return storage.inside(settings.storage.scratch_dir, settings.storage.scratch_dir / check_job_id(job_id))


@contextmanager
def work_files(what: str):
    """Reads of a step's inputs from the work folder: a missing one means the job's work files were removed."""
    try:
        yield
    except FileNotFoundError as exc:
        raise WorkFilesGone(f"{what} is gone from the work folder (removed when the job finished or failed for good): "
                            "clear the run from its first task (prepare) to transcribe again") from exc


def completed_by_this_run(job: Job, store: JobStore, step: str) -> dict | None:
    """The job document when this run already COMPLETED the job (a step cleared and re-run afterwards has
    nothing left to do: its work files are gone and the transcripts are published)."""
    doc = store.get(job["job_id"])
    if doc and doc.get("status") == COMPLETED and doc.get("run_id") == job.get("run_id"):
        logger.bind(job_id=job["job_id"]).info("{}: job already COMPLETED by run {}; nothing to do", step, job.get("run_id"))
        return doc
    return None


def check_params(params: dict, settings: Settings) -> JobOptions:
    """Normalise and check trigger parameters; InvalidParameter/ModelNotFound on a bad value."""
    if params.get("job_id") is not None:
        check_job_id(params["job_id"])
    language = (params.get("language") or settings.whisper.default_language()).strip().lower()
    if language not in LANGUAGES:
        raise InvalidParameter(f"language {language!r} is not supported; choose one of {', '.join(LANGUAGES)}", code="UNSUPPORTED_LANGUAGE")
    model = (params.get("model") or settings.whisper.default_model).strip()
    whisper.whisper_language(model, language)
    whisper.check_installation(settings.whisper.cli, settings.whisper.model_path(model))
    formats = list(params.get("formats") or FORMATS)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InvalidParameter(f"unknown output formats {unknown}; choose from {list(FORMATS)}", code="INVALID_FORMAT")
    chunking = (params.get("chunking") or settings.chunking.method).strip().lower()
    if chunking not in audio.METHODS:
        raise InvalidParameter(f"chunking {chunking!r} is not supported; choose one of {', '.join(audio.METHODS)}", code="INVALID_CHUNKING")
    prompt = whisper.check_prompt(params.get("prompt"))
    return {"language": language, "model": model, "formats": formats, "chunking": chunking, "prompt": prompt}


def validate(params: dict, *, job_id: str, dag_id: str, run_id: str, settings: Settings, store: JobStore) -> Job:
    """Register the job, check parameters and the source object, probe its audio."""
    source = params.get("source") or ""
    store.start(job_id, source=source, language=params.get("language") or settings.whisper.default_language(), model=params.get("model") or settings.whisper.default_model, dag_id=dag_id, run_id=run_id)
    with timed_step(store, job_id, "validate") as log:
        checked = check_params(params, settings)
        location = storage.locate(source, settings)
        if location.in_pipeline_area(settings):
            raise InvalidSource(f"source {location.uri!r} is one of the pipeline's own work or transcript files", code="SOURCE_IN_PIPELINE_AREA")
        if location.extension in REFUSED_EXTENSIONS:
            raise InvalidSource(f"{location.name!r}: files of type {location.extension} are not media; send audio or video", code="UNSUPPORTED_EXTENSION")
        try:
            obj = storage.object_info(location.uri, settings)
        except FileNotFoundError as exc:
            raise SourceNotFound(f"source object {location.uri} does not exist") from exc
        check_unchanged(location.uri, params.get("etag"), obj.etag)
        size = obj.size
        if size > settings.limits.max_file_bytes:
            raise InvalidAudio(f"source is {size} bytes, over the limit of {settings.limits.max_file_bytes}", code="FILE_TOO_LARGE")
        fetch_started = time.monotonic()
        local = fetch_source(location.uri, obj.etag, scratch_dir(settings, job_id) / f"source{location.extension}", settings)
        probe_started = time.monotonic()
        info = audio.probe(local)
        probe_done = time.monotonic()
        if info.duration_s > settings.limits.max_duration_s:
            raise InvalidAudio(f"audio lasts {info.duration_s:.0f}s, over the limit of {settings.limits.max_duration_s:.0f}s", code="DURATION_TOO_LONG")
        if info.duration_s < settings.limits.min_duration_s:
            raise InvalidAudio(f"audio lasts {info.duration_s:.2f}s, under the minimum of {settings.limits.min_duration_s:.2f}s: too short to hold speech", code="AUDIO_TOO_SHORT")
        store.record_validated(job_id, options=checked, size_bytes=size, audio=info.as_dict())
        log.info("source {} ok: {} bytes, {:.2f}s of {} audio, {} Hz, {} channel(s) (download {:.2f}s, probe {:.2f}s)", location.uri, size,
                 info.duration_s, info.codec, info.sample_rate, info.channels, probe_started - fetch_started, probe_done - probe_started)
    return {"job_id": job_id, "run_id": run_id, "source": location.uri, "etag": obj.etag, **checked, "duration_s": info.duration_s, "size_bytes": size}


def prepare(params: dict, *, job_id: str, dag_id: str, run_id: str, settings: Settings, store: JobStore) -> tuple[Job, list[Batch]]:
    """validate then chunk, in one task: the job and its transcription batches."""
    job = validate(params, job_id=job_id, dag_id=dag_id, run_id=run_id, settings=settings, store=store)
    return job, chunk(job, settings=settings, store=store)


def finish(job: Job, batch_results: list[BatchResult], *, settings: Settings, store: JobStore) -> dict[str, str]:
    """merge then publish, in one task: the published transcripts by format."""
    return publish(job, merge(job, batch_results, settings=settings, store=store), settings=settings, store=store)


def check_unchanged(uri: str, claimed: str | None, current: str) -> None:
    """SourceChanged when the object no longer has the content (ETag) it was claimed or validated with."""
    if claimed and current != claimed:
        raise SourceChanged(f"source {uri} changed after it was claimed (ETag {claimed} → {current}): this job is not "
                            "transcribing other content; the new content is a job of its own")


def fetch_source(uri: str, etag: str, dest: Path, settings: Settings) -> Path:
    """Download the source into scratch, within the size limit, and check it is still the content with `etag`."""
    try:
        path = storage.download(uri, dest, settings, max_bytes=settings.limits.max_file_bytes)
        current = storage.object_info(uri, settings).etag
    except FileNotFoundError as exc:
        raise SourceNotFound(f"source object {uri} does not exist any more") from exc
    try:
        check_unchanged(uri, etag, current)
    except SourceChanged:
        path.unlink(missing_ok=True)
        raise
    return path


def check_complete_decode(job: Job, decoded_s: float) -> None:
    """A file that decodes to much less than the duration its header declares is truncated or damaged."""
    declared = job["duration_s"]
    if decoded_s < 0.9 * declared and declared - decoded_s > 1.0:
        raise InvalidAudio(f"only {decoded_s:.1f}s of the declared {declared:.1f}s could be decoded: the file is truncated or damaged",
                           code="TRUNCATED_AUDIO")


def local_source(job: Job, settings: Settings) -> Path:
    """The source in local scratch: reused when this machine already downloaded it whole, else fetched."""
    location = storage.locate(job["source"], settings)
    path = scratch_dir(settings, job["job_id"]) / f"source{location.extension}"
    if path.is_file() and path.stat().st_size == job["size_bytes"]:
        return path
    return fetch_source(location.uri, job.get("etag") or "", path, settings)


def chunk_plan(decoded, method: str, settings: Settings, vad=None) -> audio.Plan:
    """The chunks of a decoded recording with the configured lengths and pause detection."""
    return audio.plan_chunks(
        decoded,
        method,
        target_s=settings.chunking.seconds,
        min_s=settings.chunking.min_s,
        max_s=settings.chunking.max_s,
        overlap_s=settings.chunking.overlap_s,
        min_silence_s=settings.chunking.silence_min_s,
        below_speech_db=settings.chunking.silence_below_speech_db,
        keep_silence_s=settings.chunking.silence_keep_s,
        vad=vad,
    )


def chunk(job: Job, *, settings: Settings, store: JobStore) -> list[Batch]:
    """Decode the source once to 16 kHz mono, plan the cuts on it (silence, VAD or fixed), cut the chunks
    from the same decoded audio and put them and the plan (with the silences found) in the work folder."""
    job_id = job["job_id"]
    method = job.get("chunking") or settings.chunking.method
    if completed_by_this_run(job, store, "chunk"):
        return []
    with timed_step(store, job_id, "chunk") as log, scratch_removed(settings, job_id):
        location = storage.locate(job["source"], settings)
        work = scratch_dir(settings, job_id)
        wav = audio.decode_to_wav(local_source(job, settings), work / "decoded.wav", settings.limits.decode_timeout_s, max_s=settings.limits.max_duration_s)
        decoded = audio.Recording.open(wav)
        if decoded.duration_s > settings.limits.max_duration_s:
            raise InvalidAudio(f"the audio decodes to more than the limit of {settings.limits.max_duration_s:.0f}s (its header said "
                               f"{job['duration_s']:.0f}s)", code="DURATION_TOO_LONG")
        check_complete_decode(job, decoded.duration_s)

        def vad() -> list[tuple[float, float]]:
            return whisper.vad_speech(
                wav,
                cli=settings.whisper.cli,
                model_path=settings.whisper.model_path(job["model"]),
                vad_model_path=settings.whisper.model_path(settings.chunking.vad_model),
                threads=settings.whisper.threads,
                timeout_s=settings.whisper.timeout(decoded.duration_s / 10),
            )

        plan = chunk_plan(decoded, method, settings, vad)
        files = audio.cut_chunks(decoded, plan.chunks, work / "chunks")
        refs: list[ChunkRef] = []
        for planned, path in zip(plan.chunks, files):
            uri = storage.upload(path, chunk_audio_uri(job, planned.index, settings), settings)
            refs.append({**planned.as_dict(), "duration_s": planned.duration_s, "speech_s": round(speech_seconds(planned, plan.silences), 2), "uri": uri})
        storage.write_text(location.work_uri(settings, job_id, "plan.json"), json.dumps(plan.as_dict()), settings)
        grouped = batches.plan_batches(refs, lanes=settings.whisper.lanes(), max_s=settings.chunking.batch_max_s, min_s=settings.chunking.batch_min_s,
                                      rounds=settings.chunking.batch_rounds)
        store.set_chunks(job_id, [p.as_dict() for p in plan.chunks], batches=[[c["index"] for c in b] for b in grouped], removed=plan.removed())
        cuts = ", ".join(f"{c.end_s:.2f}s {c.cut}" for c in plan.chunks[:-1]) or "none"
        log.info("{:.2f}s of audio, {} chunking: {} silence(s), {} chunk(s) (cuts: {}), {} silent; {} transcription batch(es) of {} chunk(s)",
                 plan.duration_s, method, len(plan.silences), len(plan.chunks), cuts, sum(c.silent for c in plan.chunks),
                 len(grouped), "/".join(str(len(b)) for b in grouped))
        store.step_memory(job_id, "chunk", **task_memory())
        decoding = decide_language(job, plan, log)
    return [{"batch": i, "chunks": b, **decoding} for i, b in enumerate(grouped)]


def chunk_audio_uri(job: Job, index: int, settings: Settings) -> str:
    """Where a chunk's WAV lies in the work folder (named as audio.cut_chunks names it)."""
    return storage.locate(job["source"], settings).work_uri(settings, job["job_id"], "chunks", f"chunk-{index:05d}.wav")


@contextmanager
def scratch_removed(settings: Settings, job_id: str):
    """The job's scratch on this machine is removed when the block ends, however it ends."""
    try:
        yield
    finally:
        shutil.rmtree(scratch_dir(settings, job_id), ignore_errors=True)


CONFIDENT_P = 0.8  # a chunk detected at least this surely in another language than the vote's: the recording is mixed


def speech_seconds(chunk: audio.ChunkPlan, silences: list[tuple[float, float]]) -> float:
    """Seconds of a chunk's audio outside the silences found."""
    return chunk.duration_s - sum(max(0.0, min(e, b) - max(s, a)) for s, e in chunk.spans for a, b in silences)


def window_result(chunk: int, start_s: float, end_s: float, speech_s: float, language: str, p: float) -> dict:
    """One window's detection, as voted on and recorded on the job."""
    return {"chunk": chunk, "start_s": start_s, "end_s": end_s, "speech_s": speech_s, "language": language, "p": round(p, 3)}


def language_vote(windows: list[dict]) -> dict:
    """What the chunks' detections (`language`, `p`, `speech_s` each) decide, as recorded on the job
    (`language_detected`): they vote with their probability times their seconds of speech; a chunk detected
    in another language with at least CONFIDENT_P makes the recording `mixed`."""
    votes: dict[str, float] = defaultdict(float)
    for window in windows:
        votes[window["language"]] += max(window["p"], 0.01) * max(window["speech_s"], 0.1)
    decided = max(votes, key=votes.get)
    mixed = any(w["language"] != decided and w["p"] >= CONFIDENT_P for w in windows)
    return {"language": decided, "vote_share": round(votes[decided] / sum(votes.values()), 3), "mixed": mixed, "windows": windows}


def decoding_of(detected: dict) -> Decoding:
    """How the chunks are decoded after a vote: all told the winner, or in a mixed recording each confidently
    detected window in its own language and the other chunks detecting theirs (`-l auto`)."""
    if detected["mixed"]:
        return {"language": "auto", "chunk_languages": {str(w["chunk"]): w["language"] for w in detected["windows"] if w["p"] >= CONFIDENT_P}}
    return {"language": detected["language"], "chunk_languages": {}}


def decide_language(job: Job, plan: audio.Plan, log) -> Decoding:
    """How the batches decode their chunks: `{"language": …, "chunk_languages": {}}` (plus `vote`).

    A language given with the job is used as is. With `auto`, no chunk is decoded before the language is known
    and no encoder pass is spent on detection alone: every audible chunk is decoded with `-l auto`, whose
    detection reuses the chunk's encoder pass (whisper/patches); each batch votes on its chunks and decodes
    again, told the winner, those that lost (`decode_and_vote`); then all chunks of the job vote and a chunk
    its batch decoded in another language than the job's is decoded again, told it (`settle_language`), unless
    it was sure of its own (a mixed recording). A leading silence has no say: chunks vote with their seconds
    of speech."""
    language = whisper.whisper_language(job["model"], job["language"])
    if language != "auto" or all(c.silent for c in plan.chunks):
        return {"language": language, "chunk_languages": {}}
    log.info("language: every audible chunk detects its own while it is transcribed; its batch, then the job, vote")
    return {"language": "auto", "chunk_languages": {}, "vote": True}


def log_vote(log, detected: dict, voters: str) -> None:
    log.info("language {} ({}) from the {} chunk(s) of {}: {}", detected["language"], "mixed recording: chunks keep their own" if detected["mixed"] else "every chunk in it",
             len(detected["windows"]), voters, ", ".join(f"chunk {w['chunk']} {w['language']} p={w['p']:.2f}" for w in detected["windows"]))


def job_decode_args(job: Job, settings: Settings) -> tuple[str, ...]:
    """whisper-cli flags for the job's chunks: word times from DTW (STT_WORD_TIMING) only when the job
    publishes JSON, the one format with word times (srt, vtt and txt use segment times, as exact with
    whisper's token times once the merge snaps them, and DTW costs about 5 % more whisper time), and the job's prompt."""
    timing = settings.whisper.word_timing if "json" in (job.get("formats") or FORMATS) else "tokens"
    return whisper.decode_args(job["model"], timing, job.get("prompt", ""))


def chunk_result_uri(job: Job, index: int, settings: Settings) -> str:
    return storage.locate(job["source"], settings).work_uri(settings, job["job_id"], "results", f"chunk-{index:05d}.json")


def transcribe(job: Job, batch: Batch, *, settings: Settings, store: JobStore, attempt: int = 1, worker: str = "") -> BatchResult:
    """Transcribe one batch of chunks with one whisper-cli process and store each chunk's segments (times
    relative to the chunk) in the work folder as soon as whisper-cli finishes it.

    A retry keeps the chunks an earlier try finished (their results are in the work folder). A chunk the
    planner found silent (nothing audible) is not sent to whisper: it has no text to give, only text to invent.
    Chunks are decoded in the language the chunk step decided (`batch["language"]`, `batch["chunk_languages"]`;
    see `decide_language`), one whisper-cli process per language."""
    job_id, number, refs = job["job_id"], batch["batch"], batch["chunks"]
    if completed_by_this_run(job, store, f"transcribe batch {number}"):
        return {"batch": number, "results": []}
    language = batch.get("language") or whisper.whisper_language(job["model"], job["language"])
    own_languages = batch.get("chunk_languages") or {}
    results = {ref["index"]: chunk_result_uri(job, ref["index"], settings) for ref in refs}
    with timed_step(store, job_id, "transcribe", batch=number) as log:
        todo = refs
        if attempt > 1:
            todo = [ref for ref in refs if not storage.exists(results[ref["index"]], settings)]
            kept = [ref for ref in refs if ref not in todo]
            for ref in kept:  # counted again (idempotent): the earlier try may have stored the result but not counted it
                run = json.loads(storage.read_text(results[ref["index"]], settings))
                store.chunk_completed(job_id, ref["index"], seconds=run.get("whisper_seconds", 0.0), language=run.get("language", ""), segments=len(run.get("segments", [])))
            if kept:
                log.info("batch {}: {} chunk(s) finished by an earlier try are kept", number, len(kept))
        audible = [ref for ref in todo if not ref.get("silent")]
        for ref in todo:
            if ref.get("silent"):
                save_chunk_result(job, ref, whisper.WhisperRun(language="", segments=[], seconds=0.0), results, settings=settings, store=store)
                log.info("chunk {} ({:.1f}s audio) is silent: not transcribed", ref["index"], ref["duration_s"])
        if audible:
            if not batch.get("settling"):  # chunks decoded again by settle_language stay counted as done
                store.chunks_started(job_id, [ref["index"] for ref in audible], attempt=attempt, worker=worker)
            # a folder per batch and try: batches of one job run side by side on a worker and clean up after themselves
            folder = scratch_dir(settings, job_id) / f"batch-{number:03d}-try-{attempt}"
            with work_files(f"a chunk of batch {number}"):
                wavs = {ref["index"]: storage.download(ref["uri"], folder / Path(ref["uri"]).name, settings) for ref in audible}
            speech_s = sum(ref["duration_s"] for ref in audible)
            vote = bool(batch.get("vote"))
            if vote and attempt > 1 and (earlier := ((store.get(job_id) or {}).get("batches") or {}).get(str(number), {}).get("language_vote")):
                decoding = decoding_of(earlier)  # an earlier try voted: its chunks are decoded as it decided
                language, own_languages, vote = decoding["language"], decoding["chunk_languages"], False
            decoded_in: dict[int, str] = {}

            def language_of(index: int) -> str:
                return decoded_in.get(index) or own_languages.get(str(index), language)

            by_language: dict[str, list[ChunkRef]] = defaultdict(list)
            for ref in audible:
                by_language[language_of(ref["index"])].append(ref)
            hear_again_min_s = settings.chunking.hear_again_min_s
            silences = plan_silences(job, settings) if hear_again_min_s > 0 else []
            unheard: dict[int, tuple[ChunkRef, whisper.WhisperRun, list[tuple[float, float]]]] = {}
            loops: dict[int, int] = {}  # words of decoding loops dropped from a chunk before hearing it again

            def done(ref: ChunkRef, run: whisper.WhisperRun) -> None:
                if ref.get("detected") and not run.detected:  # decoded again (settle_language): what it was first heard as
                    run = dataclasses.replace(run, detected=tuple(ref["detected"]))
                log.bind(chunk=ref["index"]).info("chunk {} ({:.1f}s audio) → {} segment(s), language {} (told {}), whisper {:.2f}s",
                                                  ref["index"], ref["duration_s"], len(run.segments), run.language or "?", run.language_told, run.seconds)
                if hear_again_min_s <= 0:
                    save_chunk_result(job, ref, run, results, settings=settings, store=store)
                    return
                segments, looped = without_loops(run.segments)  # the time a loop ran over holds no words
                spans = hearing.unheard(segments, start_s=ref["start_s"], pieces=ref["pieces"], silences=silences, min_speech_s=hear_again_min_s,
                                        edge_min_speech_s=settings.chunking.hear_again_edge_min_s)
                if spans:  # stored once heard again: a retry before that decodes the chunk anew
                    if looped:
                        log.bind(chunk=ref["index"]).info("chunk {}: a decoding loop kept once ({} word(s) dropped)", ref["index"], looped)
                        loops[ref["index"]] = looped
                    unheard[ref["index"]] = (ref, dataclasses.replace(run, segments=segments), spans)
                else:
                    save_chunk_result(job, ref, run, results, settings=settings, store=store)

            runs: list[whisper.ProcessStats] = []
            group: list[ChunkRef] = []

            def decode(chunks: list[ChunkRef], chunk_language: str, on_result: Callable[[ChunkRef, whisper.WhisperRun], None]) -> whisper.ProcessStats:
                nonlocal group
                group = chunks
                runs.append(whisper.transcribe_many(
                    [wavs[ref["index"]] for ref in chunks],
                    cli=settings.whisper.cli,
                    model_path=settings.whisper.model_path(job["model"]),
                    language=chunk_language,
                    threads=settings.whisper.threads,
                    timeout_s=settings.whisper.timeout(sum(ref["duration_s"] for ref in chunks)),
                    extra_args=job_decode_args(job, settings),
                    on_result=lambda i, run: on_result(chunks[i], run),
                    nice=settings.whisper.nice,
                ))
                return runs[-1]

            try:
                if vote:
                    heard: dict[int, whisper.WhisperRun] = {}
                    decode_and_vote(job, number, audible, decode, heard, store=store, log=log)
                    decoded_in.update({index: run.language for index, run in heard.items()})
                    for ref in audible:
                        done(ref, heard[ref["index"]])
                else:
                    for chunk_language, chunks in by_language.items():
                        decode(chunks, chunk_language, done)
                if unheard:
                    runs.extend(hear_again(job, unheard, wavs, folder, results, languages={i: language_of(i) for i in unheard},
                                           loop_words=loops, silences=silences, settings=settings, store=store, log=log))
            except WhisperCrash as exc:
                ref = group[exc.index]
                if store.record_crash(job_id, ref["index"], message=str(exc)) >= MAX_CRASHES_PER_CHUNK:
                    raise WhisperCrashed(f"whisper-cli crashed on chunk {ref['index']} ({ref['start_s']:.1f}-{ref['end_s']:.1f}s of the recording) "
                                         f"{MAX_CRASHES_PER_CHUNK} times; not retried: {exc}") from exc
                raise
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            stats = whisper.ProcessStats.combined(runs)
            memory = task_memory()
            store.batch_finished(job_id, number, whisper_s=stats.seconds, whisper_cpu_s=stats.cpu_s, speech_s=speech_s, chunks=len(audible),
                                 whisper_rss_mb=stats.peak_rss_mb, memory=memory, worker=worker, attempt=attempt)
            log.info("batch {}: {} chunk(s), {:.1f}s of speech in {:.2f}s of whisper ({:.1f}x real time, {} thread(s)); peak memory: whisper {:.0f} MB, task {:.0f} MB",
                     number, len(audible), speech_s, stats.seconds, speech_s / max(stats.seconds, 1e-6), settings.whisper.threads, stats.peak_rss_mb, memory["rss_mb"])
    return {"batch": number, "results": [{"index": index, "result_uri": uri} for index, uri in results.items()]}


def decode_and_vote(job: Job, number: int, audible: list[ChunkRef], decode, heard: dict[int, whisper.WhisperRun], *, store: JobStore, log) -> None:
    """Decode a batch's chunks with `-l auto` into `heard` (each run keeps what it detected), let their
    detections vote (`language_vote`, recorded on the batch) and decode again, told the winner, each chunk
    that lost unsure (p < CONFIDENT_P: a chunk sure of another language keeps it)."""

    def keep(ref: ChunkRef, run: whisper.WhisperRun) -> None:
        heard[ref["index"]] = run

    found = decode(audible, "auto", keep).detected
    for ref, (language, p) in zip(audible, found):
        run = heard[ref["index"]]
        heard[ref["index"]] = dataclasses.replace(run, detected=(language or run.language, round(p, 3)))
    detected = language_vote([window_result(ref["index"], ref["start_s"], ref["end_s"], ref.get("speech_s", ref["duration_s"]), *heard[ref["index"]].detected)
                              for ref in audible])
    store.set_batch_language(job["job_id"], number, detected)
    log_vote(log, detected, f"batch {number}")
    lost = [ref for ref in audible if heard[ref["index"]].language != detected["language"] and heard[ref["index"]].detected[1] < CONFIDENT_P]
    if lost:
        log.info("chunk(s) {} detected another language, unsure: decoded again told {}", ", ".join(str(ref["index"]) for ref in lost), detected["language"])
        first = {ref["index"]: heard[ref["index"]].detected for ref in lost}
        decode(lost, detected["language"], keep)
        for index, was in first.items():
            heard[index] = dataclasses.replace(heard[index], detected=was)


def settle_language(job: Job, chunks: list[ChunkResult], *, batches: int, settings: Settings, store: JobStore) -> list[ChunkResult]:
    """The job's chunk results (as read from `batches` batches) in the job's language, when it is `auto`: every
    chunk's detection votes (`language_vote`, recorded on the job as `language_detected`) and a chunk its batch
    decoded in another language, unless it was detected in that language surely (p ≥ CONFIDENT_P: a mixed
    recording), is decoded again here, told the job's (one more batch, numbered after the others)."""
    voting = [c for c in chunks if c.get("detected")]
    if whisper.whisper_language(job["model"], job["language"]) != "auto" or not voting:  # no vote: nothing audible, or decoded as an earlier vote decided
        return chunks
    with timed_step(store, job["job_id"], "language") as log:
        detected = language_vote([window_result(c["index"], c["start_s"], c["end_s"], c.get("speech_s", c["end_s"] - c["start_s"]), *c["detected"])
                                  for c in voting])
        lost = [c for c in chunks if c.get("language") and c["language"] != detected["language"] and not surely_in(c, c["language"])]
        store.set_language_detected(job["job_id"], {**detected, "decoded_again": [c["index"] for c in lost]})
        log_vote(log, detected, "the job")
        if not lost:
            return chunks
        log.info("chunk(s) {} were decoded in another language by their batch: decoded again told {}", ", ".join(str(c["index"]) for c in lost),
                 detected["language"])
        again: Batch = {"batch": batches, "chunks": [chunk_ref(job, c, settings) for c in lost], "language": detected["language"],
                        "chunk_languages": {}, "settling": True}
        with work_files("a chunk result"):
            redone = {r["index"]: json.loads(storage.read_text(r["result_uri"], settings)) for r in transcribe(job, again, settings=settings, store=store)["results"]}
    return [redone.get(c["index"], c) for c in chunks]


def surely_in(result: dict, language: str) -> bool:
    """Whether a chunk result was detected in `language` with at least CONFIDENT_P."""
    detected = result.get("detected") or ("", 0.0)
    return detected[0] == language and detected[1] >= CONFIDENT_P


def chunk_ref(job: Job, result: dict, settings: Settings) -> ChunkRef:
    """The chunk a stored chunk result was made from."""
    pieces = result.get("pieces") or [[result["start_s"], result["end_s"]]]
    return {"index": result["index"], "start_s": result["start_s"], "end_s": result["end_s"], "cut": result.get("cut", "fixed"),
            "overlap_s": result.get("overlap_s", 0.0), "silent": bool(result.get("silent")), "pieces": pieces,
            "duration_s": round(sum(e - s for s, e in pieces), 3), "speech_s": result.get("speech_s", 0.0), "uri": chunk_audio_uri(job, result["index"], settings),
            **({"detected": result["detected"]} if result.get("detected") else {})}


HEAR_AGAIN_ROUNDS = 3  # whisper can stop early in a stretch heard again too: what it left after its last word is heard on its own
MAX_CRASHES_PER_CHUNK = 2  # whisper-cli crashing this often on one chunk fails the job (retries would crash again)


def plan_silences(job: Job, settings: Settings) -> list[list[float]]:
    """The silences the chunk step found (recording time), from the plan in the work folder."""
    with work_files("the chunk plan"):
        plan = json.loads(storage.read_text(storage.locate(job["source"], settings).work_uri(settings, job["job_id"], "plan.json"), settings))
    return plan["silences"]


def hear_again(job: Job, unheard: dict, wavs: dict[int, Path], folder: Path, results: dict[int, str], *, languages: dict[int, str],
               loop_words: dict[int, int], silences: list, settings: Settings, store: JobStore, log) -> list[whisper.ProcessStats]:
    """Decode each stretch of speech whisper left without words on its own (one whisper-cli process per
    language), put what it hears among the chunk's words and store the chunks (with the `loop_words` dropped
    from them first). A hearing can stop early again: speech still without words after the last word it wrote
    in its stretch is heard again, in up to HEAR_AGAIN_ROUNDS rounds. When a decoding fails, the chunks are
    stored as heard so far (logged with the error)."""
    again: dict[int, list] = defaultdict(list)
    stats: list[whisper.ProcessStats] = []
    pending = unheard
    for round_no in range(1, HEAR_AGAIN_ROUNDS + 1):
        heard = hear_stretches(job, pending, wavs, folder / f"again-{round_no}", languages=languages, settings=settings, stats=stats, log=log)
        left: dict = {}
        for index, (ref, run, spans) in pending.items():
            segments, added, stopped = run.segments, [], []
            for span, found in heard.get(index, []):
                segments = hearing.put_in_place(segments, found, span)
                added.append([*span, hearing.word_count(found)])
                if (end := hearing.last_word_end(found)) is not None:
                    stopped.append((span[0] + end, span[1]))
            again[index].extend(added)
            if added:
                log.bind(chunk=index).info("chunk {}: {:.1f}s without words in {} stretch(es) heard again: {} word(s) more",
                                           index, sum(e - s for s, e in spans), len(spans), sum(n for *_, n in added))
            run = dataclasses.replace(run, segments=segments)
            still = [(s, e) for s, e in hearing.unheard(segments, start_s=ref["start_s"], pieces=ref["pieces"], silences=silences,
                                                         min_speech_s=settings.chunking.hear_again_min_s,
                                                         edge_min_speech_s=settings.chunking.hear_again_edge_min_s)
                     if any(end <= s and e <= v1 + 0.01 for end, v1 in stopped)]  # after the last word a hearing wrote
            if still and round_no < HEAR_AGAIN_ROUNDS:
                left[index] = (ref, run, still)
            else:
                save_chunk_result(job, ref, run, results, settings=settings, store=store, heard_again=again[index], loop_words=loop_words.get(index, 0))
        pending = left
        if not pending:
            break
    return stats


def hear_stretches(job: Job, pending: dict, wavs: dict[int, Path], folder: Path, *, languages: dict[int, str], settings: Settings,
                   stats: list[whisper.ProcessStats], log) -> dict[int, list]:
    """What whisper hears in each stretch of `pending` (chunk index → (ref, run, spans)) decoded on its own:
    chunk index → [(span, segments)]; empty when the decoding fails (logged)."""
    stretches: dict[str, list[tuple[int, tuple[float, float], Path]]] = defaultdict(list)
    for index, (_ref, _run, spans) in pending.items():
        plans = [audio.ChunkPlan(index=k, start_s=v0, end_s=v1) for k, (v0, v1) in enumerate(spans)]
        for span, path in zip(spans, audio.cut_chunks(wavs[index], plans, folder / f"{index:05d}")):
            stretches[languages[index]].append((index, span, path))
    heard: dict[int, list] = defaultdict(list)
    try:
        for stretch_language, group in stretches.items():
            stats.append(whisper.transcribe_many(
                [path for *_, path in group],
                cli=settings.whisper.cli,
                model_path=settings.whisper.model_path(job["model"]),
                language=stretch_language,
                threads=settings.whisper.threads,
                timeout_s=settings.whisper.timeout(sum(v1 - v0 for _, (v0, v1), _ in group)),
                extra_args=job_decode_args(job, settings),
                on_result=lambda i, run, group=group: heard[group[i][0]].append((group[i][1], run.segments)),
                nice=settings.whisper.nice,
            ))
    except (WhisperFailed, WhisperTimeout):
        log.exception("hearing again the speech whisper left without words failed; those chunks are kept as heard so far")
        heard.clear()
    return heard


def task_memory() -> dict:
    """The task process's peak resident memory so far, the memory only it holds, and the memory only its parent
    holds (under an executor, Airflow's supervisor of this task: a process per task too), in MB."""
    return {"rss_mb": procs.own_peak_rss_mb(), "uss_mb": procs.unique_memory_mb(),
            "supervisor_uss_mb": procs.unique_memory_mb(os.getppid())}


def save_chunk_result(job: Job, ref: ChunkRef, run: whisper.WhisperRun, results: dict[int, str], *, settings: Settings, store: JobStore,
                      heard_again: list | None = None, loop_words: int = 0) -> None:
    """Put one chunk's result in the work folder and count the chunk as done on the job (once). `heard_again`:
    [start, end, words] of each stretch decoded a second time (hear_again); `loop_words`: words of decoding
    loops dropped before that."""
    meta = {k: ref[k] for k in ("index", "start_s", "end_s", "cut", "overlap_s", "silent", "pieces", "speech_s") if k in ref}
    again = {"heard_again": heard_again} if heard_again else {}
    if loop_words:
        again["loop_words"] = loop_words
    storage.write_text(results[ref["index"]], json.dumps({**meta, **run.as_dict(), **again}, ensure_ascii=False), settings)
    store.chunk_completed(job["job_id"], ref["index"], seconds=run.seconds, language=run.language, segments=len(run.segments))


def merge(job: Job, batch_results: list[BatchResult], *, settings: Settings, store: JobStore) -> Merged:
    """Join the chunk results of all batches into one transcript in the work folder: times shifted by each
    chunk's start, overlaps spliced, loops collapsed, text in silence dropped (merge.merge_chunks); with
    `auto`, once every chunk is in the job's language (settle_language)."""
    job_id = job["job_id"]
    if doc := completed_by_this_run(job, store, "merge"):
        return {"transcript_uri": None, "segments": doc.get("segments", 0)}
    results = sorted((r for batch in batch_results for r in batch["results"]), key=lambda r: r["index"])
    with work_files("a chunk result"):
        chunks = [json.loads(storage.read_text(r["result_uri"], settings)) for r in results]
    chunks = settle_language(job, chunks, batches=len(batch_results), settings=settings, store=store)
    with timed_step(store, job_id, "merge") as log:
        location = storage.locate(job["source"], settings)
        with work_files("the chunk plan"):
            plan = json.loads(storage.read_text(location.work_uri(settings, job_id, "plan.json"), settings))
        merged = merge_chunks(chunks, silences=plan["silences"])
        transcript = {
            "job_id": job_id,
            "source": job["source"],
            "model": job["model"],
            "language": merged["language"] or (job["language"] if job["language"] != "auto" else ""),
            "language_requested": job["language"],
            "duration_s": round(job["duration_s"], 3),
            "chunking": plan["method"],
            "text": merged["text"],
            "segments": merged["segments"],
            "chunks": merged["chunks"],
            "removed": {"audio": plan.get("removed"), "words": merged["removed"]},
        }
        uri = storage.write_text(location.work_uri(settings, job_id, "transcript.json"), json.dumps(transcript, ensure_ascii=False), settings)
        log.info("merged {} chunk(s) into {} segment(s), language {}; removed {} repeated word(s), {} word(s) in silence",
                 len(chunks), len(merged["segments"]), transcript["language"] or "?", merged["removed"]["repeated_words"], merged["removed"]["words_in_silence"])
        store.step_memory(job_id, "merge", **task_memory())
    return {"transcript_uri": uri, "segments": len(merged["segments"])}


def publish(job: Job, merged: Merged, *, settings: Settings, store: JobStore) -> dict[str, str]:
    """Write the transcript in every requested format next to the source, complete the job, clean up."""
    job_id = job["job_id"]
    if doc := completed_by_this_run(job, store, "publish"):
        return doc.get("outputs") or {}
    with timed_step(store, job_id, "publish") as log:
        with work_files("the merged transcript"):
            transcript = json.loads(storage.read_text(merged["transcript_uri"], settings))
        location = storage.locate(job["source"], settings)
        outputs = {fmt: storage.write_text(location.output_uri(settings, fmt), render(transcript, fmt), settings) for fmt in job["formats"]}
        log.info("published {}", ", ".join(outputs.values()))
    store.complete(job_id, outputs=outputs, language=transcript["language"], segments=len(transcript["segments"]), text_chars=len(transcript["text"]))
    cleanup(job_id, job["source"], settings)
    return outputs


def cleanup(job_id: str, source: str | None, settings: Settings) -> None:
    """Remove the job's work folder in storage and this machine's scratch (once it is COMPLETED, or has failed for
    good); a source that cannot be located (the reason it failed, perhaps) has no work folder."""
    shutil.rmtree(scratch_dir(settings, job_id), ignore_errors=True)
    try:
        location = storage.locate(source or "", settings)
    except InvalidSource:
        return
    storage.delete_tree(location.work_uri(settings, job_id), settings)
    logger.bind(job_id=job_id).info("removed the work folder and scratch of the job")
