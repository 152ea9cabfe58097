"""Word timing where it pays: DTW (the JSON's word times) only for jobs that publish JSON.

Real whisper.cpp with the base model, real Mongo wire protocol; the whisper-cli flags are read off the
real calls (a pass-through wrapper)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import JFK_TEXT, JFK_WAV, normalise

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("formats, dtw", [(["srt", "txt"], False), (["json", "srt"], True)])
def test_dtw_runs_only_for_jobs_that_publish_json(formats, dtw, tmp_path, jobs, whisper_ready, monkeypatch):
    from stt import pipeline, whisper
    from stt.jobs import JobStore

    root = tmp_path / "storage"
    (root / "inbox").mkdir(parents=True)
    shutil.copyfile(JFK_WAV, root / "inbox" / "jfk.wav")
    settings = whisper_ready.updated(storage={"local_root": root, "scratch_dir": tmp_path / "scratch"})
    assert settings.whisper.word_timing == "dtw"
    flags = []
    real = whisper.transcribe_many

    def recording_flags(*args, **kwargs):
        flags.append(tuple(kwargs["extra_args"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(whisper, "transcribe_many", recording_flags)
    store = JobStore(jobs)
    job = pipeline.validate({"source": f"file://{root}/inbox/jfk.wav", "language": "en", "model": "base", "formats": formats},
                            job_id=f"timing-{'-'.join(formats)}", dag_id="test", run_id="r1", settings=settings, store=store)
    batches = pipeline.chunk(job, settings=settings, store=store)
    outputs = pipeline.finish(job, [pipeline.transcribe(job, batch, settings=settings, store=store) for batch in batches],
                              settings=settings, store=store)

    assert flags and all(("-dtw" in f) == dtw for f in flags), flags
    assert sorted(outputs) == sorted(formats)
    text = Path(outputs["srt"].removeprefix("file://")).read_text()
    assert normalise(JFK_TEXT) in normalise(" ".join(line for line in text.splitlines() if line and "-->" not in line and not line.isdigit()))


def test_a_last_window_shorter_than_the_dtw_filter_is_timed_not_aborted(whisper_ready, tmp_path, monkeypatch):
    """30 s of real speech after which whisper's last window holds 120 ms of audio: stock whisper.cpp's DTW median
    filter (7 audio tokens, 140 ms) asserted the window is wider and aborted whisper-cli, failing the job;
    whisper/patches/dtw-short-window.patch aligns such a window unfiltered."""
    import numpy as np

    from bench import corpus
    from stt import whisper

    monkeypatch.delenv("WHISPER_SAMPLING_SEED", raising=False)
    samples, _ = corpus.fade(tmp_path, np.random.default_rng(list(corpus.GENERATED).index("real_fade_en")))
    path = tmp_path / "fading.wav"
    corpus.write_wav(path, samples[int(75.565 * corpus.SR) : int(105.565 * corpus.SR)])
    settings = whisper_ready
    run = whisper.transcribe(path, cli=settings.whisper.cli, model_path=settings.whisper.model_path("base"), language="en",
                             threads=1, timeout_s=300, extra_args=whisper.decode_args("base", "dtw"))
    words = [w for seg in run.segments for w in seg.get("words", [])]
    assert len(words) >= 15 and all(0.0 <= w["start"] <= w["end"] <= 30.0 for w in words)
    assert "forced" in normalise(" ".join(seg["text"] for seg in run.segments))
