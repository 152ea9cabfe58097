"""The whisper-cli runner: a chunk's transcript does not depend on what else its batch transcribes."""

from __future__ import annotations

import shutil

import pytest

from conftest import JFK_TEXT, SHARED, normalise
from stt import whisper

pytestmark = pytest.mark.e2e


def test_same_audio_three_times_in_one_batch_gives_the_same_transcript(whisper_ready, tmp_path):
    """whisper-cli given several files carries decoder state from one to the next (jfk.wav twice in one process
    ends its segment at 10.60 s, then 10.42 s): each file must be decoded as alone, so a retry that resumes
    mid-batch, or another batch layout, gives the same text and times."""
    wavs = [shutil.copyfile(SHARED / "jfk.wav", tmp_path / f"jfk-{i}.wav") for i in range(3)]
    runs: dict[int, whisper.WhisperRun] = {}
    stats = whisper.transcribe_many(
        wavs, cli=whisper_ready.whisper_cli, model_path=whisper_ready.model_path("base"), language="en", threads=1,
        timeout_s=120, extra_args=whisper.decode_args("base"), on_result=lambda i, run: runs.__setitem__(i, run))

    assert sorted(runs) == [0, 1, 2]
    assert normalise(" ".join(s["text"] for s in runs[0].segments)) == normalise(JFK_TEXT)
    assert runs[1].segments == runs[0].segments and runs[2].segments == runs[0].segments
    assert stats.cpu_s > 0 and stats.peak_rss_mb > 100 and stats.seconds >= sum(r.seconds for r in runs.values()) - 1e-6


def test_timeout_kills_whisper_and_says_so(whisper_ready, tmp_path):
    wav = shutil.copyfile(SHARED / "jfk.wav", tmp_path / "jfk.wav")
    with pytest.raises(whisper.WhisperTimeout, match="did not finish within"):
        whisper.transcribe_many([wav], cli=whisper_ready.whisper_cli, model_path=whisper_ready.model_path("base"), language="en",
                                threads=1, timeout_s=0.05, on_result=lambda *_: None)
