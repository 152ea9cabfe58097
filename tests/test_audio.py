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


def test_quiet_speech_is_raised_to_the_speech_level_and_loud_speech_left_alone(tmp_path):
    """A far talker (JFK 26 dB down) after a close one (JFK as recorded), a long pause shortened out between them:
    each stretch of speech between the silences reaches the target level, the loud one keeps its samples."""
    import numpy as np

    from pydub import AudioSegment

    jfk = AudioSegment.from_wav(JFK_WAV)
    talk = jfk + AudioSegment.silent(4000, frame_rate=16000) + jfk.apply_gain(-26)
    path = tmp_path / "talk.wav"
    talk.export(path, format="wav")
    recording = audio.Recording.open(path)
    plan = audio.plan_chunks(recording, "silence", target_s=30.0, min_s=15.0, max_s=30.0, overlap_s=6.0, min_silence_s=0.3,
                             below_speech_db=35.0, keep_silence_s=1.0)
    [chunk] = plan.chunks
    assert len(chunk.spans) == 2  # the long pause shortened
    [levelled] = audio.cut_chunks(recording, plan.chunks, tmp_path / "levelled", speech_level_db=-15.0, silences=plan.silences)
    [plain] = audio.cut_chunks(recording, plan.chunks, tmp_path / "plain")

    def samples(wav):
        with wave.open(str(wav)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)

    out, before = samples(levelled), samples(plain)
    loud = round(11.0 * 16000)
    assert np.array_equal(out[: loud - 8000], before[: loud - 8000])  # the close talker is already loud enough
    far_before, far_after = before[-round(11.0 * 16000):], out[-round(11.0 * 16000):]
    levels = [audio.frame_levels(audio.Recording(len(x), memory=x)) for x in (before[:loud], far_before, far_after)]
    p95 = [float(np.percentile(level, audio.SPEECH_PERCENTILE)) for level in levels]
    assert p95[0] > -15.0 > p95[1] + 20 and abs(p95[2] - -15.0) < 1, p95  # the far talker raised to the target
    assert np.abs(out.astype(np.int32)).max() <= 32767 * 10 ** (audio.PEAK_CEILING_DB / 20) + 1
