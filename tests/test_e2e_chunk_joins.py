"""Chunk joins end to end: continuous speech cut where there is no pause (forced cuts of silence chunking,
fixed chunks) loses and duplicates no word — real espeak-ng speech, real whisper.cpp, the pipeline's own
chunk → transcribe → merge steps on file:// storage (the benchmark's harness, bench/accuracy.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import accuracy, corpus, texts

pytestmark = pytest.mark.e2e

TEXT = texts.BOUNDARY_STRESS[0] + " " + texts.BOUNDARY_STRESS[2]


@pytest.fixture(scope="module")
def stress_wav(tmp_path_factory) -> Path:
    """About 30 s of unpunctuated speech: no pause long enough to cut in, so every cut falls in a word."""
    work = tmp_path_factory.mktemp("stress")
    speech = np.concatenate([corpus.synth(part, "en-us", 165, work) for part in (texts.BOUNDARY_STRESS[0], texts.BOUNDARY_STRESS[2])])
    path = work / "stress.wav"
    corpus.write_wav(path, np.concatenate([corpus.silence(0.3), speech]))
    return path


@pytest.mark.parametrize("method, cut", [("silence", "forced"), ("fixed", "fixed")])
def test_no_word_lost_or_duplicated_at_joins(stress_wav, method, cut, whisper_ready, tmp_path, monkeypatch):
    monkeypatch.setenv("STT_CHUNK_SECONDS", "15")
    monkeypatch.setenv("STT_CHUNK_MIN_S", "6")
    monkeypatch.setenv("STT_CHUNK_OVERLAP_S", "6")

    transcript, _ = accuracy.run_pipeline(stress_wav, language="en", model="base", method=method, root=tmp_path)

    chunks = transcript["chunks"]
    assert len(chunks) >= 3 and {c["cut"] for c in chunks[:-1]} == {cut}
    assert all(c["overlap"] == 6.0 for c in chunks[:-1])
    assert all(c.get("join", {}).get("join") == "aligned" for c in chunks[1:]), [c.get("join") for c in chunks]
    scored = accuracy.score(TEXT, transcript["segments"], language="en")
    duplicates, losses = accuracy.join_errors(scored, accuracy.join_windows(chunks))
    assert (duplicates, losses) == (0, 0), transcript["text"]
    assert scored["wer"] < 0.1, transcript["text"]
    starts = [w["start"] for s in transcript["segments"] for w in s["words"]]
    assert starts == sorted(starts), "word times must run forward across the joins"
