"""Faults staged for real during a run: whisper-cli killed, MongoDB down, S3 down, retries exhausted.

Runs stt_transcribe with dag.test() (real retries with real backoff delays) while a background thread
does the damage at the right moment.
"""

from __future__ import annotations

import signal
import threading
import time

import jiwer
import psutil
import pytest
from pydub import AudioSegment

from conftest import JFK_TEXT, JFK_WAV, normalise

pytestmark = pytest.mark.e2e


class Saboteur(threading.Thread):
    """Runs `act` once `ready()` holds (polled), in the background; records what it did."""

    def __init__(self, ready, act, timeout_s=120.0):
        super().__init__(daemon=True)
        self.ready, self.act, self.timeout_s = ready, act, timeout_s
        self.done = threading.Event()
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout_s
        try:
            while time.monotonic() < deadline:
                if self.ready():
                    self.act()
                    self.done.set()
                    return
                time.sleep(0.02)
        except Exception as exc:  # surfaced by the test's assertion on .done / .error
            self.error = exc


def chunked(jobs, job_id):
    doc = jobs.find_one({"_id": job_id}, {"chunks_total": 1})
    return bool(doc and doc.get("chunks_total"))


@pytest.fixture
def jfk_three_times(tmp_path, monkeypatch):
    """33 s of speech in a local storage root (long enough for base to take a few seconds)."""
    jfk = AudioSegment.from_wav(JFK_WAV)
    (tmp_path / "inbox").mkdir()
    path = tmp_path / "inbox" / "jfk x3.wav"
    (jfk + jfk + jfk).export(path, format="wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))
    return path


def assert_jfk_times(tmp_path, times, jobs, job_id):
    doc = jobs.find_one({"_id": job_id})
    assert doc["status"] == "COMPLETED", doc.get("error")
    assert doc["chunks_completed"] == doc["chunks_total"]
    text = normalise((tmp_path / "transcripts" / "jfk x3.wav.txt").read_text())
    # every copy whole; whisper may mishear a word in a copy it hears cut differently ("ask not to what")
    assert jiwer.wer(normalise(" ".join([JFK_TEXT] * times)), text) <= 0.05, text
    return doc


def test_whisper_killed_mid_batch_is_retried_and_keeps_finished_chunks(run_transcribe, jobs, jfk_three_times, tmp_path, monkeypatch):
    """Three or more chunks in one batch (one whisper-cli process); whisper is killed once the first chunk is stored:
    the retry transcribes only the other two."""
    for name, value in {"STT_CHUNK_SECONDS": "11", "STT_CHUNK_MIN_S": "6", "STT_CHUNK_MAX_S": "12"}.items():
        monkeypatch.setenv(name, value)
    killed = []

    def first_chunk_stored():
        doc = jobs.find_one({"_id": "fault-kill"}, {"chunks": 1}) or {}
        return (doc.get("chunks") or {}).get("0", {}).get("status") == "COMPLETED"

    def kill_whisper():  # until the process is found
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for proc in psutil.process_iter(["name", "cmdline"]):
                if proc.info["name"] == "whisper-cli" and "fault-kill" in " ".join(proc.info["cmdline"] or []):
                    proc.send_signal(signal.SIGKILL)
                    killed.append(proc.pid)
            time.sleep(0.01)

    saboteur = Saboteur(first_chunk_stored, kill_whisper)
    saboteur.start()
    dag_run = run_transcribe(source=f"file://{jfk_three_times}", language="en", model="base", job_id="fault-kill")

    assert saboteur.done.is_set() and killed, saboteur.error
    assert dag_run.state == "success"
    doc = assert_jfk_times(tmp_path, 3, jobs, "fault-kill")
    assert doc["chunks_total"] >= 3 and len(doc["batches"]) == 1
    attempts = [doc["chunks"][str(i)]["attempts"] for i in range(doc["chunks_total"])]
    assert attempts[0] == 1 and set(attempts[1:]) == {2}, f"the retry must keep the chunk already done: {attempts}"
    assert doc["retry_count"] >= 1
    retry = next(iter(doc["retries"].values()))
    assert retry["code"] == "WHISPER_FAILED" and "signal 9" in retry["message"]
    assert retry["waited_s"] >= 1.0, "the retry must wait for Airflow's backoff"


def test_mongo_down_during_a_run_then_back(run_transcribe, jobs, mongo_server, jfk_three_times, tmp_path):
    def outage():
        mongo_server.stop()
        time.sleep(4)
        mongo_server.start()

    saboteur = Saboteur(lambda: chunked(jobs, "fault-mongo"), outage)
    saboteur.start()
    dag_run = run_transcribe(source=f"file://{jfk_three_times}", language="en", model="base", job_id="fault-mongo")

    saboteur.join(30)
    assert saboteur.done.is_set(), saboteur.error
    assert dag_run.state == "success"
    doc = assert_jfk_times(tmp_path, 3, jobs, "fault-mongo")
    assert all(c["status"] == "COMPLETED" for c in doc["chunks"].values())
    assert doc["error"] is None


def test_s3_unreachable_for_a_while_then_back(run_transcribe, jobs, s3_server):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="flaky")
    jfk = AudioSegment.from_wav(JFK_WAV)
    (jfk + jfk + jfk).export("/tmp/stt-fault-s3.wav", format="wav")
    s3.upload_file("/tmp/stt-fault-s3.wav", "flaky", "inbox/jfk x3.wav")

    def outage():  # longer than botocore's and s3fs's own retries, so Airflow's retry is needed
        s3_server.stop()
        time.sleep(25)
        s3_server.start()

    saboteur = Saboteur(lambda: chunked(jobs, "fault-s3"), outage)
    saboteur.start()
    dag_run = run_transcribe(source="s3://flaky/inbox/jfk x3.wav", language="en", model="base", job_id="fault-s3")

    saboteur.join(30)
    assert saboteur.done.is_set(), saboteur.error
    assert dag_run.state == "success"
    doc = jobs.find_one({"_id": "fault-s3"})
    assert doc["status"] == "COMPLETED" and doc["chunks_completed"] == doc["chunks_total"]
    assert doc["retry_count"] >= 1, "the outage must have cost at least one retry"
    text = s3_server.client().get_object(Bucket="flaky", Key="transcripts/jfk x3.wav.txt")["Body"].read().decode()
    assert normalise(text) == normalise(" ".join([JFK_TEXT] * 3))


def test_retries_exhausted_fail_the_job_with_the_last_error(run_transcribe, jobs, tmp_path, monkeypatch):
    """whisper-cli never finishes in time: every try times out, backoff grows to the cap, the job ends FAILED."""
    (tmp_path / "inbox").mkdir()
    AudioSegment.from_wav(JFK_WAV).export(tmp_path / "inbox" / "jfk.wav", format="wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("STT_WHISPER_TIMEOUT_MIN_S", "0.05")
    monkeypatch.setenv("STT_WHISPER_TIMEOUT_FACTOR", "0")

    dag_run = run_transcribe(source=f"file://{tmp_path}/inbox/jfk.wav", language="en", model="tiny.en", job_id="fault-exhausted")

    assert dag_run.state == "failed"
    doc = jobs.find_one({"_id": "fault-exhausted"})
    assert doc["status"] == "FAILED"
    assert doc["error"]["code"] == "WHISPER_TIMEOUT" and doc["error"]["step"].startswith("transcribe[")
    assert doc["retry_count"] == 3
    waits = [r["waited_s"] for r in sorted(doc["retries"].values(), key=lambda r: r["try"])]
    # Airflow 3.3: try n waits in [base·2^(n−1), 2·base·2^(n−1)), capped (base 1 s, cap 4 s in these tests).
    assert 1.0 <= waits[0] < 3.0 and 2.0 <= waits[1] < 5.0 and 4.0 <= waits[2] < 6.0, waits
    assert waits == sorted(waits), waits
    print(f"backoff waits: {waits}")
