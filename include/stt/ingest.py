"""Ingestion: find new objects, claim each exactly once in MongoDB, and describe the runs to start.

Every entry point (scheduled listing, S3 event notifications, the CLI) goes through `claim_objects`, so an
object (bucket + key + ETag) becomes exactly one job whichever path sees it first, and however many
ingest runs overlap. The job id is derived from the object's identity; the run id from the job id, so
a trigger repeated after a crash finds the run already there instead of starting a second one.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote_plus

from stt.config import Settings
from stt.errors import InvalidSource
from stt.jobs import JobStore
from stt.log import logger
from stt.storage import ObjectInfo, list_objects, locate

TRANSCRIBE_DAG_ID = "stt_transcribe"


def job_id_for_object(obj: ObjectInfo) -> str:
    """Same object content at the same place → same job id; new content → new id."""
    return "obj-" + hashlib.sha1(f"{obj.uri}\n{obj.etag}".encode()).hexdigest()[:20]


def run_id_for_job(job_id: str) -> str:
    return f"stt__{job_id}"


def trigger_request(job_id: str, conf: dict) -> dict:
    """What TriggerDagRunOperator needs to start the job's run (idempotent by run id)."""
    return {"trigger_run_id": run_id_for_job(job_id), "conf": {**conf, "job_id": job_id}}


def transcribable(obj: ObjectInfo, settings: Settings) -> bool:
    """Whether an object may become a job: a source inside a storage root, not one of the pipeline's own files
    (an inbox at a bucket's root, or a notification for the whole bucket, also sees work/ and transcripts/)."""
    try:
        location = locate(obj.uri, settings)
    except InvalidSource as exc:
        logger.warning("not ingested: {}", exc)
        return False
    return not location.in_pipeline_area(settings)


def claim_objects(objects: list[ObjectInfo], *, store: JobStore, origin: str, claimed_by: str, conf: dict,
                  limit: int, lease_s: float, settings: Settings) -> list[dict]:
    """Claim up to `limit` transcribable objects not yet known, largest first; returns the trigger requests for the
    ones this caller won, in that order. Runs start in the order they are triggered, so a bulk inbox's long
    recordings take the whisper slots first and the short ones fill the gaps: the inbox is done sooner than
    when a long recording that came last finishes alone. The run is told the object's ETag, so it transcribes
    the content claimed or fails with SOURCE_CHANGED."""
    by_id = {job_id_for_object(obj): obj for obj in sorted(objects, key=lambda o: -o.size) if transcribable(obj, settings)}
    known = store.existing_ids(list(by_id)) if by_id else set()
    requests = []
    for job_id, obj in by_id.items():
        if len(requests) >= limit:
            break
        if job_id in known:
            continue
        run_conf = {**conf, "source": obj.uri, "etag": obj.etag}
        if store.claim(job_id, source=obj.uri, etag=obj.etag, size=obj.size, origin=origin, claimed_by=claimed_by, lease_s=lease_s, conf=run_conf):
            logger.bind(job_id=job_id).info("claimed {} (etag {}, {} bytes) via {}", obj.uri, obj.etag, obj.size, origin)
            requests.append(trigger_request(job_id, run_conf))
    return requests


def scan_and_claim(*, settings: Settings, store: JobStore, claimed_by: str) -> list[dict]:
    """The scheduled path: re-offer stale claims, then list every inbox and claim new objects, bounded per run."""
    ingest = settings.ingest
    stale = store.reclaim_stale(claimed_by=claimed_by, lease_s=ingest.lease_s, limit=ingest.max_per_run)
    requests = [trigger_request(doc["_id"], doc.get("conf") or {"source": doc["source"]}) for doc in stale]
    for doc in stale:
        logger.bind(job_id=doc["_id"]).warning("re-offering {}: claimed but its run did not start within the lease", doc["source"])
    defaults = settings.ingest_conf()
    for inbox in settings.inbox_uris():
        room = ingest.max_per_run - len(requests)
        if room <= 0:
            break
        objects = list_objects(inbox, settings, min_age_s=ingest.min_age_s)
        won = claim_objects(objects, store=store, origin="schedule", claimed_by=claimed_by, conf=defaults, limit=room, lease_s=ingest.lease_s,
                            settings=settings)
        logger.info("inbox {}: {} object(s), {} newly claimed", inbox, len(objects), len(won))
        requests.extend(won)
    return requests


def objects_from_s3_events(messages: list) -> list[ObjectInfo]:
    """S3 ObjectCreated notifications (as delivered through SQS) → objects; one message may carry many records."""
    objects = []
    for message in messages:
        body = message.get("Body", message) if isinstance(message, dict) else message
        payload = json.loads(body) if isinstance(body, str) else body
        if isinstance(payload, dict) and "Message" in payload and "Records" not in payload:
            payload = json.loads(payload["Message"])  # wrapped by SNS
        for record in (payload or {}).get("Records", []):
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = record["s3"]
            key = unquote_plus(s3["object"]["key"])
            objects.append(ObjectInfo(uri=f"s3://{s3['bucket']['name']}/{key}", etag=str(s3["object"].get("eTag", "")).strip('"'), size=int(s3["object"].get("size", 0))))
    return objects


def claim_from_asset_events(events, *, settings: Settings, store: JobStore, claimed_by: str) -> list[dict]:
    """The event path: asset events from the SQS watcher carry `{"payload": {"message_batch": [...]}}`."""
    ingest = settings.ingest
    messages = [m for event in events for m in ((event.extra or {}).get("payload") or {}).get("message_batch", [])]
    objects = objects_from_s3_events(messages)
    logger.info("{} notification message(s) → {} created object(s)", len(messages), len(objects))
    defaults = settings.ingest_conf()
    # No per-run bound here: a notification is consumed once, so every object it names is claimed now.
    return claim_objects(objects, store=store, origin="event", claimed_by=claimed_by, conf=defaults, limit=len(objects), lease_s=ingest.lease_s,
                         settings=settings)
