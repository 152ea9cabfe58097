"""Chunk planning: silence-based cuts within [min, max], fixed-with-overlap fallback, silence detection on real samples."""

from __future__ import annotations

import math

import pytest
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from conftest import JFK_WAV
from stt import audio

KNOBS = {"target_s": 30.0, "min_s": 10.0, "max_s": 30.0, "overlap_s": 6.0}


def bounds(plans):
    return [(p.start_s, p.end_s) for p in plans]


def assert_covers(plans, duration):
    """Chunks in order, from 0 to the end, each touching or overlapping the next: no audio is left out."""
    assert plans[0].start_s == 0.0 and plans[-1].end_s == pytest.approx(duration, abs=1e-3)
    assert [p.index for p in plans] == list(range(len(plans)))
    for prev, nxt in zip(plans, plans[1:]):
        assert nxt.start_s <= prev.end_s + 1e-9
        assert prev.overlap_s == pytest.approx(prev.end_s - nxt.start_s, abs=1e-3)


def test_audio_shorter_than_the_minimum_is_one_chunk():
    plans = audio.plan_silence_chunks(4.2, [(1.0, 2.0)], **KNOBS)
    assert bounds(plans) == [(0.0, 4.2)] and plans[0].cut == "end"


def test_audio_up_to_the_target_is_not_cut():
    assert len(audio.plan_silence_chunks(30.0, [(12.0, 13.0)], **KNOBS)) == 1


def test_cuts_in_the_middle_of_silences_within_bounds():
    """Long pauses are preferred to short ones a little closer to the target length."""
    silences = [(8.0, 8.4), (24.0, 25.0), (27.5, 27.9), (51.0, 52.2), (70.0, 70.5)]
    plans = audio.plan_silence_chunks(80.0, silences, **KNOBS)
    assert_covers(plans, 80.0)
    assert [p.cut for p in plans] == ["silence", "silence", "end"]
    assert plans[0].end_s == 24.5  # the middle of a 1 s pause, rather than a 0.4 s one 3 s later
    assert plans[1].end_s == 51.6
    assert all(10.0 <= p.duration_s <= 30.0 for p in plans)
    assert all(p.overlap_s == 0 for p in plans)


def test_no_silence_at_all_falls_back_to_forced_cuts_with_overlap():
    plans = audio.plan_silence_chunks(75.0, [], **KNOBS)
    assert_covers(plans, 75.0)
    assert [p.cut for p in plans] == ["forced", "forced", "end"]
    assert all(p.duration_s <= 30.0 + 1e-9 for p in plans) and all(p.duration_s >= 10.0 for p in plans)
    assert [p.overlap_s for p in plans] == [6.0, 6.0, 0.0]


def test_a_stretch_without_silence_gets_forced_cuts_then_pauses_again():
    silences = [(5.0, 6.0), (70.0, 71.0)]
    plans = audio.plan_silence_chunks(100.0, silences, **KNOBS)
    assert_covers(plans, 100.0)
    assert [p.cut for p in plans] == ["forced", "forced", "silence", "end"]
    assert plans[2].end_s == 70.5 and plans[2].overlap_s == 0.0
    assert all(10.0 <= p.duration_s <= 30.0 + 1e-9 for p in plans)


def test_silence_only_recording():
    """All silence: one long silence; chunks are cut inside it and all flagged silent by the level check."""
    plans = audio.plan_silence_chunks(95.0, [(0.0, 95.0)], **KNOBS)
    assert_covers(plans, 95.0)
    assert all(p.cut in ("silence", "end") for p in plans) and all(p.duration_s <= 30.0 for p in plans)
    room_tone = WhiteNoise().to_audio_segment(duration=40_000, volume=-70).set_frame_rate(16000).set_channels(1).set_sample_width(2)
    plan = audio.plan_chunks(room_tone, "silence", **KNOBS, min_silence_s=0.3, below_speech_db=35.0)
    assert plan.chunks and all(c.silent for c in plan.chunks)


def test_many_tiny_silences_are_not_usable():
    """Gaps shorter than the minimum silence (stop consonants, breaths) never become cut points."""
    levels = [-20.0] * 6000
    for start in range(50, 6000, 37):  # a 120 ms dip every 370 ms
        levels[start : start + 12] = [-70.0] * 12
    silences = audio.detect_silences(levels, -40.0, 0.3)
    assert silences == []
    plans = audio.plan_silence_chunks(60.0, silences, **KNOBS, levels=levels)
    assert {p.cut for p in plans[:-1]} == {"forced"}
    # a forced cut lands on the quietest point near the target, i.e. inside one of the dips
    for p in plans[:-1]:
        cut = p.end_s - p.overlap_s / 2
        assert levels[int(cut / audio.FRAME_S)] == -70.0 or levels[int(cut / audio.FRAME_S) - 1] == -70.0


def test_tail_is_never_shorter_than_the_minimum():
    plans = audio.plan_silence_chunks(41.0, [(29.0, 29.5), (36.0, 36.5)], **KNOBS)
    assert_covers(plans, 41.0)
    assert all(p.duration_s >= 10.0 for p in plans)


def test_target_shorter_than_max_cuts_near_the_target():
    """STT_CHUNK_SECONDS below the max: cut at the pause nearest the target (two copies of jfk → two chunks)."""
    silences = [(4.0, 4.4), (11.0, 11.32), (16.0, 16.4)]
    for min_s in (5.0, 15.0):  # a minimum above half the target gives way to the target
        plans = audio.plan_silence_chunks(22.0, silences, target_s=11.0, min_s=min_s, max_s=30.0, overlap_s=2.0)
        assert bounds(plans) == [(0.0, 11.16), (11.16, 22.0)]


@pytest.mark.parametrize(
    "duration, chunk, overlap, expected",
    [
        (58.0, 30.0, 2.0, [(0.0, 30.0), (28.0, 58.0)]),
        (11.0, 30.0, 6.0, [(0.0, 11.0)]),
        (90.0, 30.0, 6.0, [(0.0, 27.0), (21.0, 48.0), (42.0, 69.0), (63.0, 90.0)]),
    ],
)
def test_fixed_chunks_overlap_around_each_cut(duration, chunk, overlap, expected):
    """Equal chunks of at most `chunk` seconds, the overlap included; neighbours share `overlap` seconds."""
    plans = audio.plan_fixed_chunks(duration, chunk, overlap)
    assert bounds(plans) == expected
    assert_covers(plans, duration)
    assert [p.cut for p in plans] == ["fixed"] * (len(plans) - 1) + ["end"]


def test_silences_found_on_real_speech_are_real_pauses():
    """jfk.wav: the pauses found lie between the phrases, and a cut there never splits a word."""
    decoded = audio.load(JFK_WAV)
    levels = audio.frame_levels(decoded)
    assert len(levels) == math.ceil(len(decoded.raw_data) / 2 / 160)
    silences = audio.detect_silences(levels, audio.silence_threshold(levels, 35.0), 0.3)
    # "...Americans | ask not what your country can do for you | ask what you can do..."
    assert any(s <= 2.6 and e >= 3.0 for s, e in silences)
    assert any(s <= 7.7 and e >= 8.0 for s, e in silences)
    assert not any(s < 1.8 < e for s, e in silences)  # inside "fellow Americans"


def test_plan_and_cut_a_recording_with_a_long_pause(tmp_path):
    jfk = AudioSegment.from_wav(JFK_WAV)
    recording = jfk + AudioSegment.silent(duration=20_000, frame_rate=16000) + jfk + jfk
    plan = audio.plan_chunks(recording, "silence", **KNOBS, min_silence_s=0.3, below_speech_db=35.0)
    assert_covers(plan.chunks, recording.duration_seconds)
    assert plan.chunks[0].cut == "silence" and 11.0 < plan.chunks[0].end_s < 31.0
    assert any(s <= 12.0 and e >= 30.0 for s, e in plan.silences)  # the pause is known to the merge
    files = audio.cut_chunks(recording, plan.chunks, tmp_path)
    assert [round(AudioSegment.from_wav(f).duration_seconds, 2) for f in files] == [round(c.duration_s, 2) for c in plan.chunks]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown chunking"):
        audio.plan_chunks(AudioSegment.silent(1000, frame_rate=16000), "words", **KNOBS, min_silence_s=0.3, below_speech_db=35.0)


def test_long_silences_are_shortened_inside_chunks():
    """Silences longer than 2 × keep + SHORTEN_MIN_S lose their middle: chunks hold speech with pauses of at most that."""
    spans = audio.kept_spans(100.0, [(0.0, 5.0), (10.0, 11.5), (20.0, 60.0), (90.0, 100.0)], keep_s=1.0)
    assert spans == [(4.0, 21.0), (59.0, 91.0)]
    timeline = audio.Timeline(spans)
    assert timeline.length == 49.0 and timeline.to_virtual(30.0) == 17.0 and timeline.to_virtual(59.5) == 17.5
    assert timeline.pieces(10.0, 30.0) == ((14.0, 21.0), (59.0, 72.0))
    assert audio.kept_spans(40.0, [(0.0, 40.0)], keep_s=1.0) == [(0.0, 2.0)]  # all silence: a token chunk
    assert audio.kept_spans(40.0, [(5.0, 30.0)], keep_s=0.0) == [(0.0, 40.0)]  # 0 disables it
    # a pause that would lose under SHORTEN_MIN_S stays whole: next to no time saved, and a word at the floor kept
    assert audio.kept_spans(100.0, [(10.0, 13.5)], keep_s=1.0) == [(0.0, 100.0)]
    assert audio.kept_spans(100.0, [(10.0, 14.0)], keep_s=1.0) == [(0.0, 11.0), (13.0, 100.0)]



def test_timeline_maps_both_ways():
    """Chunks' time and recording time round trip inside the kept spans; a chunk without pieces is its start on."""
    timeline = audio.Timeline([(4.0, 21.0), (59.0, 91.0)])
    for t in (4.0, 12.5, 20.999, 59.0, 75.25, 90.5):
        assert timeline.to_recording(timeline.to_virtual(t)) == t
    for v in (0.0, 8.5, 17.0, 30.0, 48.9):
        assert timeline.to_virtual(timeline.to_recording(v)) == v
    assert timeline.to_recording(17.0) == 59.0  # the join: the next span's start
    assert timeline.pieces(10.0, 30.0) == ((14.0, 21.0), (59.0, 72.0))
    chunk = audio.Timeline.of_chunk(30.0)
    assert chunk.to_recording(0.0) == 30.0 and chunk.to_recording(12.345) == 42.345 and chunk.to_virtual(42.345) == 12.345
    assert audio.Timeline.of_chunk(10.0, [[10.0, 12.0], [20.0, 25.0]]).to_recording(2.5) == 20.5

def test_vad_planning_cuts_between_speech_spans_and_keeps_their_times():
    """`vad` chunking with the speech spans whisper.cpp's Silero VAD reports (here given directly)."""
    recording = AudioSegment.from_wav(JFK_WAV) * 6  # 66 s
    speech = [(0.3, 10.6), (11.3, 21.6), (22.3, 32.6), (33.3, 43.6), (44.3, 54.6), (55.3, 65.6)]
    plan = audio.plan_chunks(recording, "vad", **KNOBS, min_silence_s=0.3, below_speech_db=35.0, keep_silence_s=1.0, vad=lambda: speech)
    assert plan.method == "vad" and plan.silences[0] == (0.0, 0.3) and (10.6, 11.3) in plan.silences
    assert_covers(plan.chunks, 66.0)
    assert {c.cut for c in plan.chunks[:-1]} == {"vad"}
    for c in plan.chunks[:-1]:  # every cut between two speech spans
        assert any(e <= c.end_s <= s2 for (_, e), (s2, _) in zip(speech, speech[1:]))
    assert not any(c.silent for c in plan.chunks)
    nothing = audio.plan_chunks(recording, "vad", **KNOBS, min_silence_s=0.3, below_speech_db=35.0, keep_silence_s=1.0, vad=lambda: [])
    assert [c.silent for c in nothing.chunks] == [True]  # no speech at all: whisper is not even run


@pytest.mark.parametrize("kind", ["quiet_and_loud", "level_step_30", "fade"])
def test_quieter_real_speech_is_never_taken_for_silence(kind, tmp_path):
    """Real clips: a far talker (-38 dBFS) taking turns with a close one (-18), a level stepping down 30 dB, a
    fade to -48 dBFS. Whatever the plan keeps from whisper (shortened silences, silent chunks) inside an
    utterance is a pause in it: no 10 ms of it is more than 18 dB over the recording's noise floor, or within
    10 dB of the utterance's own speech level."""
    import numpy as np

    from bench import corpus

    rng = np.random.default_rng(7)
    make = {"quiet_and_loud": corpus.quiet_and_loud, "level_step_30": corpus.level_step(30), "fade": corpus.fade}[kind]
    samples, info = make(tmp_path, rng)
    corpus.write_wav(tmp_path / "talk.wav", samples)
    plan = audio.plan_chunks(tmp_path / "talk.wav", "silence", **KNOBS, min_silence_s=0.3, below_speech_db=35.0, keep_silence_s=1.0)
    levels = audio.frame_levels(tmp_path / "talk.wav")
    floor = float(np.percentile(levels, 10))
    heard = np.zeros(len(levels), dtype=bool)
    for span in (span for c in plan.chunks if not c.silent for span in c.spans):
        heard[int(round(span[0] / audio.FRAME_S)) : int(round(span[1] / audio.FRAME_S))] = True
    for start, end in info["speech"]:
        lo, hi = int(round(start / audio.FRAME_S)), int(round(end / audio.FRAME_S))
        speech_level = float(np.percentile(levels[lo:hi], 95))
        lost = levels[lo:hi][~heard[lo:hi]]
        assert not len(lost) or lost.max() < min(floor + 18, speech_level - 10), (kind, start, end, floor, speech_level, float(lost.max()))


def test_no_aligned_word_of_a_quiet_noisy_real_recording_is_left_out(tmp_path):
    """Real recordings whose speech stands only 10-20 dB over their noise (MFA's corpus clips, with its word
    alignments): every aligned word is in the audio the plan gives whisper (the quietest stretches of speech
    are no silence)."""
    import csv

    from bench.speech import MANIFEST, SPEECH_DIR, ffmpeg
    from bench.word_times import references

    rows = [r for r in csv.DictReader(MANIFEST.open(), delimiter="\t") if "corpus" in r["file"]]
    aligned = references(rows)
    assert set(aligned) == {"acoustic_corpus", "cold_corpus"}, sorted(aligned)
    for name, words in aligned.items():
        wav = tmp_path / f"{name}.wav"
        ffmpeg("-i", str(SPEECH_DIR / "clips" / f"{name}.flac"), "-ar", "16000", "-ac", "1", str(wav))
        plan = audio.plan_chunks(wav, "silence", **KNOBS, min_silence_s=0.3, below_speech_db=35.0, keep_silence_s=1.0)
        kept = [span for c in plan.chunks if not c.silent for span in c.spans]
        left_out = [(w, a, b) for w, a, b in words if sum(max(0.0, min(b, e) - max(a, s)) for s, e in kept) < 0.5 * (b - a)]
        assert len(words) > 40 and not left_out, (name, plan.removed(), left_out)
