"""The language of a job: decided once on speech, every chunk told it; English-only models never guess.

Real whisper.cpp with the real models, real Mongo wire protocol (nx-27017), dag.test() for the DAG cases.
Vietnamese speech is made with espeak-ng (`-v vi`).
"""

from __future__ import annotations

import json
import re
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
    """validate → chunk → transcribe (each batch) → merge as the DAG runs them; returns the batches, the chunk
    results (read from the work folder after merge) and the merged transcript."""
    from stt import pipeline

    job = pipeline.validate({"source": f"file://{path}", "language": language, "model": "base", "formats": ["json"]},
                            job_id=job_id, dag_id="test", run_id="r1", settings=settings, store=store)
    planned = pipeline.chunk(job, settings=settings, store=store)
    results = [pipeline.transcribe(job, batch, settings=settings, store=store) for batch in planned]
    transcript = read_json(pipeline.merge(job, results, settings=settings, store=store)["transcript_uri"])
    chunk_results = {r["index"]: read_json(r["result_uri"]) for batch in results for r in batch["results"]}
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
    assert detected["language"] == "en" and not detected["mixed"] and detected["decoded_again"] == []
    audible = {i: r for i, r in chunk_results.items() if not r.get("silent")}
    assert len(audible) >= 4 and sorted(w["chunk"] for w in detected["windows"]) == sorted(audible), detected
    for window in detected["windows"]:  # the leading silence has no say: chunks vote with their seconds of speech
        assert window["language"] == "en" and window["p"] > 0.5 and window["speech_s"] > 5, window
    assert {batch["language"] for batch in planned} == {"auto"} and all(batch["vote"] for batch in planned)
    assert all(r["detected"][0] == "en" and r["language"] == "en" for r in audible.values()), audible
    assert transcript["language"] == "en" and all(c["language"] == "en" for c in transcript["chunks"] if not c.get("silent"))
    assert normalise(transcript["text"]) == normalise(" ".join([JFK_TEXT] * 4))


def test_vietnamese_is_detected_and_an_english_window_of_a_mixed_recording_keeps_its_language(steps, jobs, tmp_path):
    root, settings, store = steps
    vietnamese = vietnamese_speech(tmp_path)
    vietnamese.export(root / "inbox" / "vi.wav", format="wav")

    _, chunk_results, transcript = run_steps(root / "inbox" / "vi.wav", language="auto", store=store, settings=settings, job_id="lang-vi")

    detected = jobs.find_one({"_id": "lang-vi"})["language_detected"]
    assert detected["language"] == "vi" and detected["windows"][0]["p"] > 0.5, detected
    assert [r["language"] for r in chunk_results.values()] == ["vi"] * len(chunk_results)
    assert transcript["language"] == "vi"
    assert {"xin", "chào", "hôm", "nay"} <= set(normalise(transcript["text"]).split()), transcript["text"]

    pause = AudioSegment.silent(1500, frame_rate=16000)
    (vietnamese + pause + AudioSegment.from_wav(JFK_WAV)).export(root / "inbox" / "mixed.wav", format="wav")
    _, chunk_results, transcript = run_steps(root / "inbox" / "mixed.wav", language="auto", store=store, settings=settings, job_id="lang-mixed")

    detected = jobs.find_one({"_id": "lang-mixed"})["language_detected"]
    assert detected["mixed"] and sorted(w["language"] for w in detected["windows"]) == ["en", "vi"], detected
    assert sorted(r["language"] for r in chunk_results.values()) == ["en", "vi"]
    assert [c["language"] for c in transcript["chunks"]] == ["vi", "en"]
    assert "ask not what your country can do for you" in normalise(transcript["text"])


def test_a_chunk_that_loses_the_vote_is_decoded_again_told_the_winner(steps, jobs, tmp_path):
    """A batch detects on every chunk and votes (pipeline.decode_and_vote), real whisper."""
    from stt import pipeline, whisper
    from stt.log import logger

    root, settings, store = steps
    vietnamese = vietnamese_speech(tmp_path)
    wavs = {0: tmp_path / "chunk-0.wav", 1: tmp_path / "chunk-1.wav"}
    vietnamese.export(wavs[0], format="wav")
    vietnamese[:1000].export(wavs[1], format="wav")  # one second of it: whisper hears another language, unsure
    refs = [{"index": 0, "start_s": 0.0, "end_s": 9.0, "duration_s": 9.0, "speech_s": 8.8},
            {"index": 1, "start_s": 12.0, "end_s": 13.0, "duration_s": 1.0, "speech_s": 1.0}]
    store.start("lang-vote", source="file:///x.wav", language="auto", model="base", dag_id="test", run_id="r1")
    told = []

    def decode(chunks, language, on_result):
        told.append((language, [ref["index"] for ref in chunks]))
        return whisper.transcribe_many([wavs[ref["index"]] for ref in chunks], cli=settings.whisper.cli, model_path=settings.whisper.model_path("base"),
                                       language=language, threads=2, timeout_s=120, on_result=lambda i, run: on_result(chunks[i], run))

    heard = {}
    pipeline.decode_and_vote({"job_id": "lang-vote"}, 0, refs, decode, heard, store=store, log=logger)

    detected = jobs.find_one({"_id": "lang-vote"})["batches"]["0"]["language_vote"]
    assert detected["language"] == "vi" and not detected["mixed"], detected
    assert detected["windows"][1]["language"] != "vi" and detected["windows"][1]["p"] < 0.8, detected
    assert told == [("auto", [0, 1]), ("vi", [1])]  # decoded again, told the winner
    assert {i: run.language for i, run in heard.items()} == {0: "vi", 1: "vi"} and heard[1].language_told == "vi" and heard[0].language_told == "auto"
    assert heard[1].detected == (detected["windows"][1]["language"], detected["windows"][1]["p"])  # what it was first heard as stays recorded


def test_a_chunk_its_batch_decoded_in_another_language_is_decoded_again_in_the_jobs(steps, jobs, tmp_path):
    """Batches vote on their own chunks; the job's vote over all of them decides (pipeline.settle_language)."""
    root, settings, store = steps
    vietnamese = vietnamese_speech(tmp_path)
    pause = AudioSegment.silent(3000, frame_rate=16000)
    (vietnamese + pause + vietnamese[:1000]).export(root / "inbox" / "vi-tail.wav", format="wav")
    settings = settings.updated(chunking={"seconds": 9.0, "min_s": 0.5, "max_s": 14.0, "batch_min_s": 0.5}, whisper={"transcribe_lanes": 2})

    planned, chunk_results, transcript = run_steps(root / "inbox" / "vi-tail.wav", language="auto", store=store, settings=settings, job_id="lang-settle")

    assert [[c["index"] for c in batch["chunks"]] for batch in planned] == [[0], [1]], [c for b in planned for c in b["chunks"]]
    doc = jobs.find_one({"_id": "lang-settle"})
    tail_vote = doc["batches"]["1"]["language_vote"]
    assert tail_vote["language"] != "vi" and tail_vote["windows"][0]["p"] < 0.8, tail_vote  # alone, the second heard as another language
    detected = doc["language_detected"]
    assert detected["language"] == "vi" and not detected["mixed"] and detected["decoded_again"] == [1], detected
    assert chunk_results[1]["language"] == chunk_results[1]["language_told"] == "vi" and chunk_results[1]["detected"][0] == tail_vote["language"]
    assert doc["batches"]["2"]["chunks_transcribed"] == 1  # decoded again as one more batch
    assert doc["chunks_completed"] == doc["chunks_total"] == 2  # counted once
    assert transcript["language"] == "vi" and [c["language"] for c in transcript["chunks"]] == ["vi", "vi"]


def encoder_passes_and_text(settings, wav, language: str, folder) -> tuple[int, str]:
    """How many encoder passes whisper-cli made on a WAV (from its timings) and the text it wrote."""
    out = folder / f"out-{language}"
    done = subprocess.run([str(settings.whisper.cli), "-m", str(settings.whisper.model_path("base")), "-f", str(wav), "-l", language,
                           "-t", "2", "-otxt", "-of", str(out)], capture_output=True, text=True, check=True)
    passes = re.search(r"encode time =.*/\s*(\d+) runs", done.stderr)
    assert passes, done.stderr[-2000:]
    return int(passes.group(1)), out.with_suffix(".txt").read_text()


def test_a_detected_language_costs_no_second_encoder_pass(whisper_ready, tmp_path):
    """whisper.cpp as provisioned (whisper/patches) reuses the detection's encoder pass for the first window."""
    told = encoder_passes_and_text(whisper_ready, JFK_WAV, "en", tmp_path)
    detected = encoder_passes_and_text(whisper_ready, JFK_WAV, "auto", tmp_path)
    assert told[0] == detected[0] == 1, (told, detected)
    assert detected[1] == told[1] and normalise(told[1]) == normalise(JFK_TEXT)


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
