"""Job documents in MongoDB: one per transcription job, updated at every step, safe to write twice."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from stt.config import Settings
from stt.errors import InvalidJobId
from stt.log import logger
from stt.records import PlannedChunk

PENDING, PROCESSING, COMPLETED, FAILED = "PENDING", "PROCESSING", "COMPLETED", "FAILED"
# A job id names folders in scratch and storage: letters, digits, '.', '_', '-', starting with a letter or digit.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)
MAX_EVENTS = 200
_INDEXED: set[tuple[str, str, str]] = set()  # collections whose indexes this process has ensured


def check_job_id(job_id) -> str:
    """The job id if it matches JOB_ID_PATTERN, else InvalidJobId: ids are data, never paths."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidJobId(f"job id {job_id!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return job_id


def now() -> datetime:
    return datetime.now(timezone.utc)


def retry_key(step: str, try_number: int) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{step}_try{try_number}")


def as_utc(value) -> datetime | None:
    """Datetimes read back from the store (naive UTC, or ISO text from some servers) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class JobStore:
    """Reads and writes job documents; every write is idempotent so retried tasks never double-count."""

    def __init__(self, collection):
        self.collection = collection

    @classmethod
    def from_airflow(cls, settings: Settings) -> "JobStore":
        """Open the jobs collection through the Airflow connection `settings.storage.mongo_conn_id` (MongoHook)."""
        from airflow.providers.mongo.hooks.mongo import MongoHook

        hook = MongoHook(mongo_conn_id=settings.storage.mongo_conn_id)
        db = hook.connection.schema or settings.storage.mongo_db
        store = cls(hook.get_collection(settings.storage.jobs_collection, mongo_db=db))
        if (settings.storage.mongo_conn_id, db, settings.storage.jobs_collection) not in _INDEXED:  # once per process
            store.ensure_indexes()
            _INDEXED.add((settings.storage.mongo_conn_id, db, settings.storage.jobs_collection))
        return store

    def ensure_indexes(self) -> None:
        """The indexes the pipeline's queries need (idempotent): by status and age (listings, the reconciler),
        stale claims, and the run a job belongs to."""
        self.collection.create_index([("status", 1), ("updated_at", 1)])
        self.collection.create_index([("status", 1), ("lease_until", 1)])
        self.collection.create_index("run_id")

    def get(self, job_id: str) -> dict | None:
        return self.collection.find_one({"_id": job_id})

    def _update(self, job_id: str, update: dict[str, Any], *, event: str | None = None, upsert: bool = False, query: dict | None = None) -> bool:
        update = {key: dict(value) for key, value in update.items()}
        update.setdefault("$set", {})["updated_at"] = now()
        if event:
            update.setdefault("$push", {})["events"] = {"$each": [{"at": now(), "event": event}], "$slice": -MAX_EVENTS}
        result = self.collection.update_one({"_id": job_id, **(query or {})}, update, upsert=upsert)
        return bool(result.modified_count or result.upserted_id)

    def claim(self, job_id: str, *, source: str, etag: str, size: int, origin: str, claimed_by: str, lease_s: float, conf: dict) -> bool:
        """Create the job as PENDING unless it exists; True for exactly one caller per job id."""
        from pymongo.errors import DuplicateKeyError

        try:
            self.collection.insert_one({
                "_id": job_id, "status": PENDING, "source": source, "etag": etag, "size_bytes": size,
                "origin": origin, "claimed_by": claimed_by, "created_at": now(), "updated_at": now(),
                "lease_until": now() + timedelta(seconds=lease_s), "conf": conf, "retry_count": 0,
                "events": [{"at": now(), "event": f"claimed by {claimed_by} ({origin})"}],
            })
        except DuplicateKeyError:
            return False
        return True

    def existing_ids(self, job_ids: list[str], page: int = 500) -> set[str]:
        """Which of these ids are jobs already: one indexed query per `page` ids, however many are asked."""
        found: set[str] = set()
        for at in range(0, len(job_ids), page):
            found |= {doc["_id"] for doc in self.collection.find({"_id": {"$in": job_ids[at : at + page]}}, {"_id": 1})}
        return found

    def unfinished_runs(self, *, idle_s: float, limit: int) -> list[dict]:
        """PROCESSING jobs with a run, not updated for `idle_s` seconds, oldest first (for the reconciler)."""
        query = {"status": PROCESSING, "updated_at": {"$lt": now() - timedelta(seconds=idle_s)}}
        fields = {"_id": 1, "dag_id": 1, "run_id": 1, "source": 1, "outputs": 1, "last_error": 1, "updated_at": 1}
        return [doc for doc in self.collection.find(query, fields).sort("updated_at", 1).limit(limit) if doc.get("run_id")]

    def reclaim_stale(self, *, claimed_by: str, lease_s: float, limit: int) -> list[dict]:
        """Take over PENDING jobs whose run never started within their lease (e.g. the trigger was lost)."""
        taken = []
        while len(taken) < limit:
            doc = self.collection.find_one_and_update(
                {"status": PENDING, "lease_until": {"$lt": now()}},
                {"$set": {"claimed_by": claimed_by, "lease_until": now() + timedelta(seconds=lease_s), "updated_at": now()}},
            )
            if not doc:
                break
            taken.append(doc)
        return taken

    def start(self, job_id: str, *, source: str, language: str, model: str, dag_id: str, run_id: str) -> None:
        """Create the job (or take over a PENDING one made by a submitter) and mark it PROCESSING."""
        self._update(
            job_id,
            {
                "$set": {
                    "status": PROCESSING,
                    "source": source,
                    "language_requested": language,
                    "model": model,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "started_at": now(),
                    "error": None,
                },
                "$setOnInsert": {"created_at": now(), "retry_count": 0},
            },
            event="started",
            upsert=True,
        )
        logger.bind(job_id=job_id).info("job {} PROCESSING: source={} language={} model={}", job_id, source, language, model)

    def request_rerun(self, job_id: str, *, conf: dict, run_id: str) -> None:
        """Remember a re-run of the job (its history stays: events, retries, earlier errors under `reruns`)."""
        doc = self.get(job_id) or {}
        self._update(job_id, {"$set": {"conf": conf}, "$push": {"reruns": {"run_id": run_id, "at": now(), "previous_error": doc.get("error")}}},
                     event=f"re-run requested as {run_id}")

    def record_validated(self, job_id: str, *, options: dict, size_bytes: int, audio: dict) -> None:
        """Record the job's checked options (pipeline.check_params) and its source's size and audio."""
        self._update(job_id, {"$set": {"options": options, "size_bytes": size_bytes, "audio": audio, "duration_s": audio["duration_s"]}}, event="validated")

    def set_chunks(self, job_id: str, plans: list[PlannedChunk], *, batches: list[list[int]], removed: dict | None = None) -> None:
        """Record the chunk plan, how chunks are batched for whisper and the audio whisper never hears
        (`removed`: seconds and why); progress starts at zero."""
        batch_of = {index: number for number, indexes in enumerate(batches) for index in indexes}
        chunks = {str(p["index"]): {"status": PENDING, "start_s": p["start_s"], "end_s": p["end_s"], "batch": batch_of.get(p["index"]), "attempts": 0}
                  for p in plans}
        self._update(job_id, {"$set": {"chunks_total": len(plans), "chunks_completed": 0, "chunks": chunks, "audio_removed": removed,
                                       "batches": {str(n): {"chunks": indexes} for n, indexes in enumerate(batches)}}},
                     event=f"chunked into {len(plans)}, {len(batches)} batch(es)")

    def set_language_detected(self, job_id: str, detected: dict) -> None:
        """Record the language decided for a job with `auto` (pipeline.settle_language): the decision and each chunk's detection."""
        self._update(job_id, {"$set": {"language_detected": detected}}, event=f"language detected: {detected.get('language') or 'none'}")

    def set_batch_language(self, job_id: str, number: int, detected: dict) -> None:
        """Record what one batch's chunks voted (pipeline.decode_and_vote), before the job's vote."""
        self._update(job_id, {"$set": {f"batches.{number}.language_vote": detected}})

    def chunks_started(self, job_id: str, indexes: list[int], *, attempt: int, worker: str) -> None:
        at = now()
        fields = {}
        for index in indexes:
            fields.update({f"chunks.{index}.status": PROCESSING, f"chunks.{index}.attempts": attempt, f"chunks.{index}.worker": worker, f"chunks.{index}.started_at": at})
        self._update(job_id, {"$set": fields})

    def batch_finished(self, job_id: str, number: int, *, whisper_s: float, whisper_cpu_s: float, speech_s: float, chunks: int, whisper_rss_mb: float,
                       memory: dict, worker: str, attempt: int) -> None:
        """What one whisper-cli process of a batch cost (the last try's figures); `memory` as pipeline.task_memory gives it."""
        self._update(job_id, {"$set": {f"batches.{number}.{k}": v for k, v in {
            "whisper_s": round(whisper_s, 3), "whisper_cpu_s": whisper_cpu_s, "speech_s": round(speech_s, 3), "chunks_transcribed": chunks, "whisper_rss_mb": whisper_rss_mb,
            "task_rss_mb": memory["rss_mb"], "task_uss_mb": memory["uss_mb"], "supervisor_uss_mb": memory["supervisor_uss_mb"],
            "worker": worker, "attempt": attempt, "finished_at": now()}.items()}})

    def step_memory(self, job_id: str, step: str, *, rss_mb: float, uss_mb: float | None, supervisor_uss_mb: float | None) -> None:
        """What a step's task process held (`memory.<step>`): its peak resident memory, the memory only it holds and
        the memory only its supervisor holds, in MB."""
        self._update(job_id, {"$set": {f"memory.{step}": {"rss_mb": rss_mb, "uss_mb": uss_mb, "supervisor_uss_mb": supervisor_uss_mb}}})

    def chunk_completed(self, job_id: str, index: int, *, seconds: float, language: str, segments: int) -> bool:
        """Mark a chunk done and count it once: a second call for the same chunk changes nothing."""
        counted = self._update(
            job_id,
            {"$set": {f"chunks.{index}.status": COMPLETED, f"chunks.{index}.whisper_s": round(seconds, 3), f"chunks.{index}.language": language, f"chunks.{index}.segments": segments, f"chunks.{index}.finished_at": now()},
             "$inc": {"chunks_completed": 1}},
            query={f"chunks.{index}.status": {"$ne": COMPLETED}},
        )
        if not counted:
            logger.bind(job_id=job_id, chunk=index).info("chunk {} was already counted; progress unchanged", index)
        return counted

    def add_timing(self, job_id: str, step: str, seconds: float) -> None:
        self._update(job_id, {"$set": {f"timings.{step}_s": round(seconds, 3)}})

    def complete(self, job_id: str, *, outputs: dict[str, str], language: str, segments: int, text_chars: int) -> None:
        doc = self.get(job_id) or {}
        started = as_utc(doc.get("started_at"))
        elapsed = (now() - started).total_seconds() if started else None
        self._update(
            job_id,
            {"$set": {"status": COMPLETED, "finished_at": now(), "outputs": outputs, "result_uri": outputs.get("json"),
                      "language": language, "segments": segments, "text_chars": text_chars, "timings.total_s": elapsed, "error": None}},
            event="completed",
        )
        logger.bind(job_id=job_id).info("job {} COMPLETED in {}s: {}", job_id, None if elapsed is None else round(elapsed, 2), outputs.get("txt"))

    def fail(self, job_id: str, *, code: str, message: str, step: str, run_id: str | None = None) -> bool:
        """Mark the job FAILED with the reason (a later success, a re-run, overwrites it). A COMPLETED job stays
        COMPLETED, and with `run_id` a job another run has taken over since is left alone; True if recorded."""
        from pymongo.errors import DuplicateKeyError

        query: dict[str, Any] = {"status": {"$ne": COMPLETED}}
        if run_id:
            query["run_id"] = {"$in": [run_id, None]}
        update = {"$set": {"status": FAILED, "finished_at": now(), "error": {"code": code, "message": message, "step": step, "at": now()}}}
        try:
            recorded = self._update(job_id, update, event=f"failed in {step}: {code}", upsert=True, query=query)
        except DuplicateKeyError:  # the job exists, but COMPLETED or another run's: the upsert tried a second document
            recorded = False
        if recorded:
            logger.bind(job_id=job_id).error("job {} FAILED in {}: [{}] {}", job_id, step, code, message)
        else:
            logger.bind(job_id=job_id).warning("job {} keeps its state: not marked FAILED in {} ([{}] {})", job_id, step, code, message)
        return recorded

    def settle_completed(self, job_id: str, *, run_id: str) -> None:
        """COMPLETED again: the run succeeded and the transcripts it published are there (the reconciler)."""
        self._update(job_id, {"$set": {"status": COMPLETED, "finished_at": now(), "error": None}}, event="settled: run succeeded, outputs present",
                     query={"run_id": run_id, "status": PROCESSING})

    def record_crash(self, job_id: str, index: int, *, message: str) -> int:
        """Count a whisper-cli crash on a chunk; returns how often it crashed on that chunk."""
        self._update(job_id, {"$inc": {f"chunks.{index}.crashes": 1}, "$set": {f"chunks.{index}.last_crash": message}})
        doc = self.collection.find_one({"_id": job_id}, {"chunks": 1}) or {}
        crashes = int(((doc.get("chunks") or {}).get(str(index)) or {}).get("crashes", 1))
        logger.bind(job_id=job_id, chunk=index).warning("whisper-cli crashed on chunk {} ({} time(s))", index, crashes)
        return crashes

    def record_attempt(self, job_id: str, *, step: str, try_number: int) -> float | None:
        """A retry starts: store how long Airflow's backoff waited since the previous try failed."""
        previous = retry_key(step, try_number - 1)
        doc = self.collection.find_one({"_id": job_id}, {"retries": 1}) or {}
        failed_at = as_utc(((doc.get("retries") or {}).get(previous) or {}).get("at"))
        waited = round((now() - failed_at).total_seconds(), 3) if failed_at else None
        self._update(job_id, {"$set": {f"retries.{previous}.waited_s": waited}}, event=f"{step} try {try_number} after {waited}s")
        logger.bind(job_id=job_id).info("{} try {} starts {}s after try {} failed (exponential backoff)", step, try_number, waited, try_number - 1)
        return waited

    def fail_unless_finished(self, job_id: str, *, code: str, message: str, step: str, run_id: str | None = None) -> None:
        """FAILED for a job still PENDING/PROCESSING (or missing); a job already FAILED or COMPLETED keeps its record,
        and with `run_id` so does a job another run has taken over since."""
        doc = self.get(job_id)
        if doc is None:
            self.fail(job_id, code=code, message=message, step=step)
            return
        if run_id and doc.get("run_id") not in (run_id, None):
            return
        if doc.get("status") in (PENDING, PROCESSING):
            changed = self._update(
                job_id,
                {"$set": {"status": FAILED, "finished_at": now(), "error": {"code": code, "message": message, "step": step, "at": now()}}},
                event=f"failed in {step}: {code}",
                query={"status": doc["status"]},
            )
            if changed:
                logger.bind(job_id=job_id).error("job {} FAILED in {}: [{}] {}", job_id, step, code, message)

    def record_retry(self, job_id: str, *, step: str, try_number: int, code: str, message: str) -> None:
        """Record a failed try that Airflow will retry; `retry_count` is the number of distinct tries recorded."""
        key = retry_key(step, try_number)
        self._update(
            job_id,
            {"$set": {f"retries.{key}": {"step": step, "try": try_number, "code": code, "message": message, "at": now()},
                      "last_error": {"code": code, "message": message, "step": step}}},
            event=f"retry after {step} try {try_number}: {code}",
        )
        recorded = len((self.collection.find_one({"_id": job_id}, {"retries": 1}) or {}).get("retries", {}))
        self._update(job_id, {"$max": {"retry_count": recorded}})
