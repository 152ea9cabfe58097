"""End to end: the job records how much memory its chunk and merge steps held (like its whisper batches)."""

from __future__ import annotations

import pytest
from pydub import AudioSegment

from conftest import JFK_TEXT, JFK_WAV, normalise

pytestmark = pytest.mark.e2e


def test_the_job_records_the_peak_memory_of_chunk_and_merge(run_transcribe, jobs, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    jfk = AudioSegment.from_wav(JFK_WAV)
    (jfk + AudioSegment.silent(duration=20_000, frame_rate=16000) + jfk).export(inbox / "pause.wav", format="wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))

    dag_run = run_transcribe(source=f"file://{inbox / 'pause.wav'}", language="en", model="tiny.en", job_id="e2e-step-memory")

    assert dag_run.state == "success"
    assert normalise((tmp_path / "transcripts" / "pause.wav.txt").read_text()) == normalise(f"{JFK_TEXT} {JFK_TEXT}")
    doc = jobs.find_one({"_id": "e2e-step-memory"})
    for step in ("chunk", "merge"):
        memory = doc["memory"][step]
        assert 10 < memory["rss_mb"] < 4096, memory
        assert memory["uss_mb"] is None or 0 < memory["uss_mb"] <= memory["rss_mb"]
    assert doc["chunks_total"] >= 1 and doc["status"] == "COMPLETED"
