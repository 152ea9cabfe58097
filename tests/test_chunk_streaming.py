"""The chunk step reads the decoded WAV in blocks and plans and cuts exactly as when the recording was
loaded whole: the same levels, the same plans (stored below, computed by the whole-recording code) and the
same chunk files, byte for byte."""

from __future__ import annotations

import hashlib
import wave

import numpy as np
import pytest

from conftest import JFK_WAV
from stt import audio

SETTINGS = {"target_s": 30.0, "min_s": 15.0, "max_s": 30.0, "overlap_s": 6.0, "min_silence_s": 0.3, "below_speech_db": 35.0}
VAD_SPEECH = [(0.3, 10.6), (31.2, 80.4), (83.5, 94.1), (139.2, 149.8), (150.3, 160.4)]
METHODS = {
    "silence": ("silence", {"keep_silence_s": 1.0}),
    "silence_keep_all": ("silence", {"keep_silence_s": 0.0}),
    "fixed": ("fixed", {}),
    "vad": ("vad", {"keep_silence_s": 1.0, "vad": lambda: VAD_SPEECH}),
}
# Plans of the recording below by the code that loaded the whole recording with pydub (the threshold: the median
# of the per-frame thresholds the local silence threshold gives it): threshold, silences,
# chunks as (start, end, cut, silent, pieces), and the sha256 of the chunk files' digests in order.
SILENCES = [(11.0, 31.0), (69.52, 72.58), (83.52, 128.58), (150.52, 155.53)]
EXPECTED = {
    "silence": (-53.4, SILENCES, [
        (0.0, 46.005, "forced", False, [(0.0, 12.0), (30.0, 46.005)]), (40.005, 70.005, "silence", False, []),
        (70.005, 128.065, "silence", False, [(70.005, 84.52), (127.58, 128.065)]), (128.065, 151.52, "end", False, []),
    ], "cacf227f5e6c413a02e88fd8c19f8c6dab3a13fbec2146afacdebe1645449acf"),
    "silence_keep_all": (-53.4, SILENCES, [
        (0.0, 21.0, "silence", False, []), (21.0, 50.075, "forced", False, []), (44.075, 71.05, "silence", False, []),
        (71.05, 101.05, "silence", False, []), (101.05, 116.05, "silence", True, []), (116.05, 139.675, "forced", False, []),
        (133.675, 155.525, "end", False, []),
    ], "cb636d9da863c1324e931d21791c543b58a673dfb3df03092be56fdc32e48146"),
    "fixed": (-53.4, SILENCES, [
        (0.0, 27.361, "fixed", False, []), (21.361, 48.721, "fixed", False, []), (42.721, 70.082, "fixed", False, []),
        (64.082, 91.443, "fixed", False, []), (85.443, 112.804, "fixed", True, []), (106.804, 134.164, "fixed", False, []),
        (128.164, 155.525, "end", False, []),
    ], "d307d0366e7f0872d54cf28ffdf284c17c766e17971dce0b40d698fdda73caf1"),
    "vad": (None, [(0.0, 0.3), (10.6, 31.2), (80.4, 83.5), (94.1, 139.2), (149.8, 150.3)], [
        (0.0, 46.765, "forced", False, [(0.0, 11.6), (30.2, 46.765)]), (40.765, 69.335, "forced", False, []),
        (63.335, 81.95, "vad", False, []), (81.95, 143.05, "forced", False, [(81.95, 95.1), (138.2, 143.05)]),
        (93.95, 155.525, "end", False, [(93.95, 95.1), (138.2, 155.525)]),
    ], "a64e0a1365e7ccb30240ac3b2a1cd017fdac0cd48b06dd793f834d8c347650fc"),
}


def recording_samples() -> np.ndarray:
    """155.5 s from jfk.wav in integer arithmetic only (the same samples everywhere): speech, room tone, a
    stretch of two voices over each other with no pause (forced cuts), long pauses, and a length that is
    no whole number of 10 ms frames or milliseconds."""
    with wave.open(str(JFK_WAV)) as w:
        jfk = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.int32)

    def tone(seconds: float) -> np.ndarray:
        return (np.arange(int(seconds * audio.SAMPLE_RATE), dtype=np.int32) * 7919) % 61 - 30

    shift = int(1.37 * audio.SAMPLE_RATE)
    dense = (jfk[:-shift] + jfk[shift:]) // 2
    parts = [jfk, tone(20.0), dense, dense, dense, dense, tone(3.0), jfk, tone(45.0), jfk, jfk, tone(5.0), tone(0.005)[:77]]
    return np.concatenate(parts).clip(-32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """The recording as the chunk step has it: through ffmpeg (whose WAV carries a LIST chunk before the data)."""
    folder = tmp_path_factory.mktemp("streaming")
    with wave.open(str(folder / "source.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.SAMPLE_RATE)
        w.writeframes(recording_samples().tobytes())
    return audio.decode_to_wav(folder / "source.wav", folder / "decoded.wav", timeout_s=60)


def whole_recording_levels(samples: np.ndarray) -> np.ndarray:
    """The 10 ms levels computed over the whole recording at once (the reference for the block-wise pass)."""
    samples = samples.astype(np.float32) / 32768.0
    count = -(-len(samples) // 160)
    padded = np.zeros(count * 160, dtype=np.float32)
    padded[: len(samples)] = samples
    power = (padded.reshape(count, 160) ** 2).mean(axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-10))


def compact(plan: audio.Plan) -> tuple:
    chunks = [(c.start_s, c.end_s, c.cut, c.silent, list(c.pieces)) for c in plan.chunks]
    return plan.as_dict()["threshold_db"], plan.silences, chunks


def test_the_decoded_file_is_read_in_place(decoded):
    recording = audio.Recording.open(decoded)
    assert recording.memory is None and recording.samples == len(recording_samples())
    assert recording.samples > 10 * audio.BLOCK_SAMPLES  # several blocks, the last one partial
    assert np.array_equal(recording.read(0, recording.samples), recording_samples())


def test_levels_block_by_block_equal_the_whole_recording_pass(decoded):
    levels = audio.frame_levels(audio.Recording.open(decoded))
    assert levels.dtype == np.float32
    assert np.array_equal(levels, whole_recording_levels(recording_samples()))


@pytest.mark.parametrize("name", list(METHODS))
def test_plans_and_chunks_are_those_of_the_whole_recording(decoded, name, tmp_path):
    method, options = METHODS[name]
    threshold, silences, chunks, digest = EXPECTED[name]
    streamed = audio.plan_chunks(audio.Recording.open(decoded), method, **SETTINGS, **options)
    assert compact(streamed) == (threshold, silences, chunks)
    assert compact(audio.plan_chunks(audio.load(decoded), method, **SETTINGS, **options)) == compact(streamed)  # held in memory
    files = audio.cut_chunks(audio.Recording.open(decoded), streamed.chunks, tmp_path)
    digests = "".join(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
    assert hashlib.sha256(digests.encode()).hexdigest() == digest


def test_only_16k_mono_16_bit_pcm_is_read(tmp_path):
    path = tmp_path / "8k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    with pytest.raises(ValueError, match="16 kHz mono 16-bit"):
        audio.Recording.open(path)
