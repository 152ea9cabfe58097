"""Job documents over the real Mongo wire protocol (nx-27017): idempotent progress, retries, failures."""

from __future__ import annotations

import threading

import pytest

from stt.jobs import JobStore


@pytest.fixture
def store(jobs):
    jobs.delete_many({})
    return JobStore(jobs)


def test_progress_counts_each_chunk_once(store, jobs):
    store.start("j1", source="s3://b/k.wav", language="en", model="tiny.en", dag_id="d", run_id="r")
    store.set_chunks("j1", [{"index": i, "start_s": i * 30.0, "end_s": (i + 1) * 30.0} for i in range(40)], batches=[list(range(20)), list(range(20, 40))])
    results = [store.chunk_completed("j1", i, seconds=1.0, language="en", segments=2) for i in (0, 1, 1, 0)]
    assert results == [True, True, False, False]

    def worker():
        for i in range(2, 40):
            store.chunk_completed("j1", i, seconds=1.0, language="en", segments=1)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    doc = jobs.find_one({"_id": "j1"})
    assert doc["chunks_completed"] == doc["chunks_total"] == 40
    assert doc["status"] == "PROCESSING"


def test_retries_are_counted_once_per_try(store, jobs):
    store.start("j2", source="s3://b/k.wav", language="en", model="tiny.en", dag_id="d", run_id="r")
    for _ in range(2):
        store.record_retry("j2", step="transcribe[3]", try_number=1, code="WHISPER_FAILED", message="killed")
    store.record_retry("j2", step="transcribe[3]", try_number=2, code="WHISPER_TIMEOUT", message="slow")
    doc = jobs.find_one({"_id": "j2"})
    assert doc["retry_count"] == 2
    assert doc["last_error"] == {"code": "WHISPER_TIMEOUT", "message": "slow", "step": "transcribe[3]"}


def test_failure_is_recorded_with_reason_and_history(store, jobs):
    store.fail("j3", code="SOURCE_NOT_FOUND", message="no such object", step="validate")
    doc = jobs.find_one({"_id": "j3"})
    assert doc["status"] == "FAILED"
    assert doc["error"]["code"] == "SOURCE_NOT_FOUND" and doc["error"]["step"] == "validate"
    assert doc["events"][-1]["event"] == "failed in validate: SOURCE_NOT_FOUND"
