"""The unchanged stt_transcribe DAG on the CeleryExecutor: PostgreSQL metadata, Redis broker, two Celery workers.

Every Airflow component runs as its own process against this machine's PostgreSQL (a database of
the test's own) and Redis (db 7); recordings sit in a moto S3 server, jobs in nx-27017.
"""

from __future__ import annotations

import pytest

from conftest import JFK_MP3, JFK_TEXT, JFK_WAV, normalise
from integration.conftest import CeleryStack, padded_jfk

pytestmark = pytest.mark.integration

WORKERS = ("worker-a", "worker-b")
BUCKET = "celery-inbox"
REPEATS_OF_LONG_FILE = 3


@pytest.fixture(scope="module")
def period_seconds() -> float:
    """The chunk length the workers get: one padded jfk, so a long recording maps into several chunks."""
    return len(padded_jfk()) / 1000


@pytest.fixture(scope="module")
def recordings(s3_server, tmp_path_factory) -> dict[str, str]:
    """Two short and two long recordings in the moto bucket: job id → expected transcript."""
    folder = tmp_path_factory.mktemp("recordings")
    (padded_jfk() * REPEATS_OF_LONG_FILE).export(folder / "jfk-long.wav", format="wav")
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET)
    expected = {}
    for job_id, local in (("celery-short-1", JFK_WAV), ("celery-short-2", JFK_MP3),
                          ("celery-long-1", folder / "jfk-long.wav"), ("celery-long-2", folder / "jfk-long.wav")):
        s3.upload_file(str(local), BUCKET, f"inbox/{job_id}{local.suffix}")
        repeats = REPEATS_OF_LONG_FILE if "long" in job_id else 1
        expected[job_id] = " ".join([JFK_TEXT] * repeats)
    return expected


@pytest.fixture(scope="module")
def celery_stack(request, tmp_path_factory, s3_server, mongo_server, period_seconds):
    """Scheduler, dag-processor, api-server and two Celery workers; everything is stopped and dropped at the end."""
    stack = CeleryStack(tmp_path_factory.mktemp("celery"), worker_env={"STT_CHUNK_SECONDS": str(period_seconds)})
    request.addfinalizer(stack.stop)
    return stack.start(worker_ids=list(WORKERS))


def test_transcribe_runs_on_two_celery_workers(celery_stack, recordings, jobs, s3_server):
    s3 = s3_server.client()
    keys = {o["Key"].split("/")[-1].rsplit(".", 1)[0]: o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="inbox/")["Contents"]}
    confs = [{"source": f"s3://{BUCKET}/{keys[job_id]}", "language": "en", "model": "tiny.en", "job_id": job_id}
             for job_id in recordings]

    runs = celery_stack.run_batch(confs, timeout_s=420)

    states = {job_id: run["state"] for job_id, run in runs.items()}
    assert states == dict.fromkeys(recordings, "success"), {job_id: (jobs.find_one({"_id": job_id}) or {}).get("error") for job_id in recordings}
    workers_seen = set()
    for job_id, expected_text in recordings.items():
        doc = jobs.find_one({"_id": job_id})
        assert doc["status"] == "COMPLETED", doc.get("error")
        assert doc["chunks_completed"] == doc["chunks_total"]
        assert doc["chunks_total"] >= (2 if "long" in job_id else 1), "a long recording must map into several chunks"
        text = s3.get_object(Bucket=BUCKET, Key=doc["outputs"]["txt"].removeprefix(f"s3://{BUCKET}/"))["Body"].read().decode()
        assert normalise(text) == normalise(expected_text)
        workers_seen |= {chunk["worker"] for chunk in doc["chunks"].values()}
    assert workers_seen == set(WORKERS), f"chunks ran on {workers_seen}"
    for worker_id in WORKERS:
        assert "preloaded the task modules in the Celery worker" in celery_stack.processes[f"worker-{worker_id}"].log_text(), \
            f"stt.celery_config did not preload in worker {worker_id}"
