"""How a job's chunks are grouped into transcription batches (one mapped task and one whisper-cli process each)."""

from __future__ import annotations

import pytest

from stt.batches import batch_count, plan_batches


def chunks(*lengths, silent=()):
    return [{"index": i, "duration_s": s, "silent": i in silent} for i, s in enumerate(lengths)]


@pytest.mark.parametrize("speech_s, lanes, expected", [
    (30, 2, 1),      # under min_s: one task, at volume other jobs fill the other slot
    (119, 2, 1),
    (120, 2, 2),     # each lane gets at least min_s
    (600, 2, 2),     # the 10-minute recording: one batch per slot
    (1300, 2, 4),    # over max_s per batch: whole rounds of lanes
    (3600, 2, 6),
    (3600, 1, 6),
    (600, 8, 8),
])
def test_batch_count(speech_s, lanes, expected):
    assert batch_count(speech_s, 1000, lanes=lanes, max_s=600, min_s=60) == expected


@pytest.mark.parametrize("speech_s, expected", [
    (119, 1),
    (239, 2),        # one round: a round of two batches needs 2 x 2 x min_s
    (240, 4),        # two batches per slot: a slot whose first batch ran fast takes another
    (600, 4),        # the 10-minute recording
    (1300, 4),
    (3600, 6),       # over max_s per batch: rounds as max_s needs
])
def test_long_recordings_get_rounds_of_batches(speech_s, expected):
    assert batch_count(speech_s, 1000, lanes=2, max_s=600, min_s=60, rounds=2) == expected


def test_never_more_batches_than_audible_chunks():
    assert batch_count(600, 3, lanes=8, max_s=600, min_s=60) == 3


def test_batches_are_balanced_and_spread_over_the_recording():
    plan = plan_batches(chunks(*[28] * 22), lanes=2, max_s=600, min_s=60)
    assert [[c["index"] for c in b] for b in plan] == [list(range(0, 22, 2)), list(range(1, 22, 2))]


def test_uneven_chunks_balance_by_speech():
    plan = plan_batches(chunks(30, 30, 30, 5, 5, 5, 5, 5, 5, 30, 30, 30, 10, 10), lanes=2, max_s=600, min_s=60)
    speech = [sum(c["duration_s"] for c in b) for b in plan]
    assert len(plan) == 2 and abs(speech[0] - speech[1]) <= 10
    assert all([c["index"] for c in b] == sorted(c["index"] for c in b) for b in plan)


def test_silent_chunks_weigh_nothing_and_every_chunk_is_in_one_batch():
    plan = plan_batches(chunks(5, 28, 28, 28, 28, 28, 30, silent={0, 6}), lanes=2, max_s=600, min_s=60)
    assert len(plan) == 2
    assert sorted(c["index"] for b in plan for c in b) == list(range(7))
    speech = [sum(c["duration_s"] for c in b if not c["silent"]) for b in plan]
    assert sorted(speech) == [56, 84]


def test_all_silent_is_one_batch():
    assert [len(b) for b in plan_batches(chunks(30, 30, silent={0, 1}), lanes=2, max_s=600, min_s=60)] == [2]


def test_no_chunks_no_batches():
    assert plan_batches([], lanes=2, max_s=600, min_s=60) == []


@pytest.mark.e2e
def test_a_chunks_text_does_not_depend_on_the_chunks_before_it_in_its_batch(tmp_path, whisper_ready):
    """One whisper-cli process decodes each of its input files as a process of its own would: a real clip
    gives the same words alone and after another one. Decoded by sampling at temperature 0.7 with one
    candidate, so that every word rests on the decoder's random draws, as whisper's temperature fallback
    does on hard speech (whisper/patches/reseed-sampling-per-file.patch)."""
    from bench.speech import SPEECH_DIR, ffmpeg
    from stt import whisper

    wavs = {}
    for name in ("cold_corpus", "acoustic_corpus"):
        wavs[name] = tmp_path / "batch" / f"{name}.wav"
        wavs[name].parent.mkdir(exist_ok=True)
        ffmpeg("-i", str(SPEECH_DIR / "clips" / f"{name}.flac"), "-ar", "16000", "-ac", "1", str(wavs[name]))
    alone = tmp_path / "alone" / "acoustic_corpus.wav"
    alone.parent.mkdir()
    alone.write_bytes(wavs["acoustic_corpus"].read_bytes())
    options = {"cli": whisper_ready.whisper.cli, "model_path": whisper_ready.whisper.model_path("base"), "language": "en",
               "threads": 1, "timeout_s": 300.0, "extra_args": (*whisper.decode_args("base"), "-tp", "0.7", "-bo", "1")}
    in_batch: dict[int, whisper.WhisperRun] = {}
    whisper.transcribe_many(list(wavs.values()), on_result=in_batch.__setitem__, **options)
    by_itself = whisper.transcribe(alone, **options)

    def words(run: whisper.WhisperRun) -> list[tuple[str, float]]:
        return [(w["text"], w["start"]) for seg in run.segments for w in seg.get("words", [])]

    assert len(words(by_itself)) > 20
    assert words(in_batch[1]) == words(by_itself)
