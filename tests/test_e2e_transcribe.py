"""End to end: stt_transcribe with real whisper.cpp, a real S3 API (moto server), a real Mongo wire protocol (nx-27017)."""

from __future__ import annotations

import json
import shutil

import pytest
from pydub import AudioSegment

from conftest import JFK_MP3, JFK_TEXT, JFK_WAV, normalise

pytestmark = pytest.mark.e2e


def assert_completed(jobs, job_id, *, language="en"):
    doc = jobs.find_one({"_id": job_id})
    assert doc is not None, f"no job document {job_id}"
    assert doc["status"] == "COMPLETED", doc.get("error")
    assert doc["chunks_total"] >= 1
    assert doc["chunks_completed"] == doc["chunks_total"]
    assert all(c["status"] == "COMPLETED" for c in doc["chunks"].values())
    assert doc["language"] == language
    assert doc["error"] is None
    assert set(doc["outputs"]) == {"txt", "srt", "vtt", "json"}
    return doc


def test_s3_wav_tiny_en(run_transcribe, s3_server, jobs):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="recordings")
    s3.upload_file(str(JFK_WAV), "recordings", "inbox/jfk.wav")

    dag_run = run_transcribe(source="s3://recordings/inbox/jfk.wav", language="en", model="tiny.en", job_id="e2e-s3-wav")

    assert dag_run.state == "success"
    text = s3.get_object(Bucket="recordings", Key="transcripts/jfk.wav.txt")["Body"].read().decode()
    assert normalise(text) == normalise(JFK_TEXT)
    published = json.loads(s3.get_object(Bucket="recordings", Key="transcripts/jfk.wav.json")["Body"].read())
    assert published["language"] == "en" and published["segments"][0]["start"] < 1.0
    doc = assert_completed(jobs, "e2e-s3-wav")
    assert doc["outputs"]["txt"] == "s3://recordings/transcripts/jfk.wav.txt"
    leftovers = s3.list_objects_v2(Bucket="recordings", Prefix="work/").get("KeyCount", 0)
    assert leftovers == 0, "the job's work folder was not cleaned up"


def test_file_wav_two_chunks(run_transcribe, jobs, tmp_path, monkeypatch):
    """A local folder as storage, and a recording long enough for two mapped transcribe tasks."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    jfk = AudioSegment.from_wav(JFK_WAV)
    (jfk + jfk).export(inbox / "jfk twice.wav", format="wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("STT_CHUNK_SECONDS", str(len(jfk) / 1000))

    dag_run = run_transcribe(source=f"file://{inbox / 'jfk twice.wav'}", language="en", model="tiny.en", job_id="e2e-file-wav")

    assert dag_run.state == "success"
    text = (tmp_path / "transcripts" / "jfk twice.wav.txt").read_text()
    assert normalise(text) == normalise(JFK_TEXT + " " + JFK_TEXT)
    doc = assert_completed(jobs, "e2e-file-wav")
    assert doc["chunks_total"] == 2
    published = json.loads((tmp_path / "transcripts" / "jfk twice.wav.json").read_text())
    second_half = [s for s in published["segments"] if s["start"] >= len(jfk) / 1000 - 0.5]
    assert second_half, "segments of the second chunk must carry its offset"
    assert [c["index"] for c in published["chunks"]] == [0, 1]
    assert (tmp_path / "transcripts" / "jfk twice.wav.srt").read_text().startswith("1\n00:00:0")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_s3_mp3_base_auto_language(run_transcribe, s3_server, jobs):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="podcasts")
    s3.upload_file(str(JFK_MP3), "podcasts", "inbox/jfk.mp3")

    dag_run = run_transcribe(source="s3://podcasts/inbox/jfk.mp3", language="auto", model="base", job_id="e2e-s3-mp3")

    assert dag_run.state == "success"
    text = s3.get_object(Bucket="podcasts", Key="transcripts/jfk.mp3.txt")["Body"].read().decode()
    assert normalise(text) == normalise(JFK_TEXT)
    doc = assert_completed(jobs, "e2e-s3-mp3", language="en")
    assert doc["language_requested"] == "auto" and doc["model"] == "base"


def test_missing_object_fails_fast_with_reason(run_transcribe, s3_server, jobs):
    s3_server.client().create_bucket(Bucket="empty-bucket")

    dag_run = run_transcribe(source="s3://empty-bucket/inbox/nothing.wav", language="en", model="tiny.en", job_id="e2e-missing")

    assert dag_run.state == "failed"
    doc = jobs.find_one({"_id": "e2e-missing"})
    assert doc["status"] == "FAILED"
    assert doc["error"]["code"] == "SOURCE_NOT_FOUND"
    assert doc["error"]["step"] == "validate"
    assert doc.get("retry_count", 0) == 0


def test_a_prompt_spells_the_recordings_names(run_transcribe, jobs, tmp_path, monkeypatch):
    """A real speaker saying "Montreal Forced Aligner, I hardly know her" (tiny.en alone writes "forced the
    liner"): told the name in the job's prompt, whisper writes it as the prompt spells it; the job records it."""
    from bench.speech import SPEECH_DIR

    (tmp_path / "inbox").mkdir()
    shutil.copy(SPEECH_DIR / "clips" / "mfa_her.flac", tmp_path / "inbox" / "mfa_her.flac")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))

    dag_run = run_transcribe(source=f"file://{tmp_path}/inbox/mfa_her.flac", language="en", model="tiny.en", job_id="e2e-prompt",
                             prompt="  Montreal Forced\nAligner, MFA. ")

    assert dag_run.state == "success"
    text = (tmp_path / "transcripts" / "mfa_her.flac.txt").read_text()
    assert normalise(text) == "montreal forced aligner i hardly know her", text
    assert assert_completed(jobs, "e2e-prompt")["options"]["prompt"] == "Montreal Forced Aligner, MFA."


def test_a_prompt_with_control_characters_fails_the_job_with_the_reason(run_transcribe, jobs, tmp_path, monkeypatch):
    (tmp_path / "inbox").mkdir()
    shutil.copy(JFK_WAV, tmp_path / "inbox" / "jfk.wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))

    dag_run = run_transcribe(source=f"file://{tmp_path}/inbox/jfk.wav", language="en", model="tiny.en", job_id="e2e-prompt-control",
                             prompt="Kennedy\x1b[2J")

    assert dag_run.state == "failed"
    doc = jobs.find_one({"_id": "e2e-prompt-control"})
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "INVALID_PROMPT" and doc["error"]["step"] == "validate"
    assert "U+001B" in doc["error"]["message"]
    assert not (tmp_path / "transcripts").exists()
