"""The language of a job: decided once on speech, every chunk told it; English-only models never guess.

Real whisper.cpp with the real models, real Mongo wire protocol (nx-27017), dag.test() for the DAG cases.
Vietnamese speech is made with espeak-ng (`-v vi`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pydub import AudioSegment

from conftest import JFK_TEXT, JFK_WAV, normalise

pytestmark = pytest.mark.e2e

VIETNAMESE = ("Xin chào các bạn. Hôm nay chúng ta sẽ nói về thời tiết ở Hà Nội. "
              "Trời rất đẹp và có nắng, nhưng buổi tối có thể mưa. Cảm ơn các bạn đã lắng nghe.")


def vietnamese_speech(folder) -> AudioSegment:
    """A Vietnamese sentence spoken by espeak-ng, 16 kHz mono."""
    raw = folder / "vi-espeak.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(raw), VIETNAMESE], check=True, capture_output=True)
    return AudioSegment.from_wav(raw).set_frame_rate(16000).set_channels(1)


def read_json(uri: str) -> dict:
    return json.loads(Path(uri.removeprefix("file://")).read_text())


def run_steps(path, *, language, store, settings, job_id):
    """validate → chunk → transcribe (each batch) as the DAG runs them; returns the batches, the chunk results
    (read from the work folder before merge) and the merged transcript."""
    from stt import pipeline

    job = pipeline.validate({"source": f"file://{path}", "language": language, "model": "base", "formats": ["json"]},
                            job_id=job_id, dag_id="test", run_id="r1", settings=settings, store=store)
    planned = pipeline.chunk(job, settings=settings, store=store)
    results = [pipeline.transcribe(job, batch, settings=settings, store=store) for batch in planned]
    chunk_results = {r["index"]: read_json(r["result_uri"]) for batch in results for r in batch["results"]}
    transcript = read_json(pipeline.merge(job, results, settings=settings, store=store)["transcript_uri"])
    pipeline.cleanup(job["job_id"], job["source"], settings)
    return planned, chunk_results, transcript


@pytest.fixture
def steps(tmp_path, jobs, whisper_ready):
    from stt.jobs import JobStore

    root = tmp_path / "storage"
    (root / "inbox").mkdir(parents=True)
    settings = whisper_ready.updated(storage={"local_root": root, "scratch_dir": tmp_path / "scratch"},
                                     chunking={"seconds": 12.0, "min_s": 6.0, "max_s": 14.0})
    return root, settings, JobStore(jobs)


def test_auto_is_decided_once_on_speech_and_every_chunk_is_told_it(steps, jobs):
    root, settings, store = steps
    jfk = AudioSegment.from_wav(JFK_WAV)
    pause = AudioSegment.silent(1000, frame_rate=16000)
    talk = AudioSegment.silent(8000, frame_rate=16000) + jfk
    for _ in range(3):
        talk += pause + jfk
    talk.export(root / "inbox" / "talk.wav", format="wav")

    planned, chunk_results, transcript = run_steps(root / "inbox" / "talk.wav", language="auto", store=store, settings=settings, job_id="lang-en")

    doc = jobs.find_one({"_id": "lang-en"})
    detected = doc["language_detected"]
    assert detected["language"] == "en" and not detected["mixed"]
    audible = {i: r for i, r in chunk_results.items() if not r.get("silent")}
    assert len(audible) >= 4 and len(detected["windows"]) == 3, detected
    for window in detected["windows"]:
        assert window["language"] == "en" and window["p"] > 0.5 and window["speech_s"] > 5, window
    assert {batch["language"] for batch in planned} == {"en"}
    assert all(r["language_told"] == "en" and r["language"] == "en" for r in audible.values()), audible
    assert transcript["language"] == "en" and all(c["language"] == "en" for c in transcript["chunks"] if not c.get("silent"))
    assert normalise(transcript["text"]) == normalise(" ".join([JFK_TEXT] * 4))


def test_vietnamese_is_detected_and_an_english_window_of_a_mixed_recording_keeps_its_language(steps, jobs, tmp_path):
    root, settings, store = steps
    vietnamese = vietnamese_speech(tmp_path)
    vietnamese.export(root / "inbox" / "vi.wav", format="wav")

    _, chunk_results, transcript = run_steps(root / "inbox" / "vi.wav", language="auto", store=store, settings=settings, job_id="lang-vi")

    detected = jobs.find_one({"_id": "lang-vi"})["language_detected"]
    assert detected["language"] == "vi" and detected["windows"][0]["p"] > 0.5, detected
    assert [r["language_told"] for r in chunk_results.values()] == ["vi"] * len(chunk_results)
    assert transcript["language"] == "vi"
    assert {"xin", "chào", "hôm", "nay"} <= set(normalise(transcript["text"]).split()), transcript["text"]

    pause = AudioSegment.silent(1500, frame_rate=16000)
    (vietnamese + pause + AudioSegment.from_wav(JFK_WAV)).export(root / "inbox" / "mixed.wav", format="wav")
    _, chunk_results, transcript = run_steps(root / "inbox" / "mixed.wav", language="auto", store=store, settings=settings, job_id="lang-mixed")

    detected = jobs.find_one({"_id": "lang-mixed"})["language_detected"]
    assert detected["mixed"] and sorted(w["language"] for w in detected["windows"]) == ["en", "vi"], detected
    assert sorted((r["language_told"], r["language"]) for r in chunk_results.values()) == [("en", "en"), ("vi", "vi")]
    assert [c["language"] for c in transcript["chunks"]] == ["vi", "en"]
    assert "ask not what your country can do for you" in normalise(transcript["text"])


def test_windows_are_chunks_of_speech_spread_over_the_recording():
    from stt.audio import ChunkPlan, Plan
    from stt.pipeline import language_windows

    chunks = [ChunkPlan(0, 0.0, 20.0, silent=True),  # a leading silence
              ChunkPlan(1, 20.0, 45.0), ChunkPlan(2, 45.0, 70.0),  # 1: mostly pauses, 2: speech
              ChunkPlan(3, 70.0, 95.0), ChunkPlan(4, 95.0, 120.0),
              ChunkPlan(5, 120.0, 150.0), ChunkPlan(6, 150.0, 155.0)]
    plan = Plan("silence", 155.0, -40.0, [(0.0, 20.0), (21.0, 40.0), (100.0, 118.0)], chunks)

    assert [c.index for c in language_windows(plan)] == [2, 3, 5]
    assert [c.index for c in language_windows(Plan("silence", 45.0, -40.0, [(0.0, 20.0)], chunks[:2]))] == [1]
    assert language_windows(Plan("silence", 20.0, -40.0, [(0.0, 20.0)], chunks[:1])) == []


def test_english_only_model_with_auto_fails_with_the_reason(run_transcribe, jobs, tmp_path, monkeypatch):
    (tmp_path / "inbox").mkdir()
    shutil.copy(JFK_WAV, tmp_path / "inbox" / "jfk.wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))

    dag_run = run_transcribe(source=f"file://{tmp_path}/inbox/jfk.wav", language="auto", model="tiny.en", job_id="lang-tiny-auto")

    assert dag_run.state == "failed"
    doc = jobs.find_one({"_id": "lang-tiny-auto"})
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "MODEL_LANGUAGE_MISMATCH" and doc["error"]["step"] == "validate"
    assert "English-only" in doc["error"]["message"]
    assert not (tmp_path / "transcripts").exists()


def test_the_trigger_forms_defaults_agree(monkeypatch):
    from stt.dag_params import transcribe_params
    from stt.config import Settings
    from stt.whisper import is_english_only

    monkeypatch.delenv("STT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("STT_INGEST_MODEL", raising=False)
    monkeypatch.delenv("STT_INGEST_LANGUAGE", raising=False)
    settings = Settings.from_env()
    form = transcribe_params(settings)
    assert form["language"].value == "auto"
    assert form["model"].value == settings.whisper.default_model == settings.ingest_conf()["model"] == "base"
    assert not is_english_only(form["model"].value)

    monkeypatch.setenv("STT_DEFAULT_MODEL", "tiny.en")  # a deployment that chose an English-only default
    form = transcribe_params(Settings.from_env())
    assert (form["model"].value, form["language"].value) == ("tiny.en", "en")
    assert Settings.from_env().ingest_conf() == {"model": "tiny.en", "language": "en"}  # ingestion starts the same jobs
