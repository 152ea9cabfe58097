"""Probing, decoding and chunk planning on real files with the real ffmpeg."""

from __future__ import annotations

import wave

import pytest

from conftest import JFK_MP3, JFK_WAV
from stt import audio
from stt.errors import InvalidAudio


def test_probe_real_speech():
    info = audio.probe(JFK_MP3)
    assert info.codec == "mp3" and 10.5 < info.duration_s < 11.5


@pytest.mark.parametrize(
    "content, code",
    [(b"", "EMPTY_FILE"), (b"this is a text file, not audio\n" * 20, "UNREADABLE_AUDIO")],
)
def test_probe_refuses_non_audio(tmp_path, content, code):
    path = tmp_path / "fake.mp3"
    path.write_bytes(content)
    with pytest.raises(InvalidAudio) as caught:
        audio.probe(path)
    assert caught.value.code == code


def test_decode_mp3_to_16k_mono(tmp_path):
    out = audio.decode_to_wav(JFK_MP3, tmp_path / "jfk.wav", timeout_s=60)
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert 10.5 < wav.getnframes() / 16000 < 11.5


@pytest.mark.parametrize(
    "duration, chunk, expected",
    [
        (11.0, 30.0, [(0.0, 11.0)]),
        (0.4, 30.0, [(0.0, 0.4)]),
        (60.0, 30.0, [(0.0, 30.0), (30.0, 60.0)]),
        # at most `chunk` long, so that every chunk fits one 30 s whisper window
        (65.0, 30.0, [(0.0, 21.667), (21.667, 43.333), (43.333, 65.0)]),
        (100.0, 30.0, [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]),
    ],
)
def test_fixed_plan_covers_everything_without_slivers(duration, chunk, expected):
    plans = audio.plan_fixed_chunks(duration, chunk)
    assert [(p.start_s, p.end_s) for p in plans] == expected
    assert [p.index for p in plans] == list(range(len(expected)))


def test_cut_chunks_writes_the_planned_lengths(tmp_path):
    plans = audio.plan_fixed_chunks(11.0, 5.5)
    files = audio.cut_chunks(JFK_WAV, plans, tmp_path)
    for plan, path in zip(plans, files):
        with wave.open(str(path)) as wav:
            assert abs(wav.getnframes() / wav.getframerate() - plan.duration_s) < 0.01


def test_a_one_chunk_job_hears_every_sample_of_the_recording(tmp_path):
    """The chunk reaching the end takes the recording to its last sample, not to the last whole millisecond:
    whisper's decoding turns on less (six samples changed two Vietnamese words of a 21 s file)."""
    with wave.open(str(JFK_WAV)) as wav:
        params, samples = wav.getparams(), wav.readframes(wav.getnframes() - 10)  # 10 samples short of 11 s
    odd = tmp_path / "odd.wav"
    with wave.open(str(odd), "wb") as out:
        out.setparams(params)
        out.writeframes(samples)
    duration = round(len(samples) / 2 / 16000, 3)
    [path] = audio.cut_chunks(odd, audio.plan_fixed_chunks(duration, 30.0), tmp_path / "chunks")
    with wave.open(str(path)) as wav:
        assert wav.readframes(wav.getnframes()) == samples
