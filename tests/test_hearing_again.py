"""Speech whisper left without words in a chunk is decoded again on its own and put in its place."""

from __future__ import annotations

import json
import sys
import textwrap

import jiwer
import pytest
from pydub import AudioSegment

from conftest import JFK_TEXT, JFK_WAV, normalise
from stt import hearing, merge, pipeline


def timed(*words):
    """A segment of (text, start, end) words."""
    items = [{"text": t, "start": s, "end": e} for t, s, e in words]
    return {"start": items[0]["start"], "end": items[-1]["end"], "text": " ".join(t for t, *_ in words), "words": items}


def test_speech_without_words_is_found_and_pauses_are_not():
    # a chunk made of [100, 110) and [120, 140) of the recording; speech everywhere but the silences
    segments = [timed(("One", 0.5, 0.9), ("two", 1.0, 1.4)), timed(("three", 12.0, 12.5)), {"start": 0, "end": 1, "text": "[BLANK_AUDIO]"}]
    silences = [[101.6, 104.0], [110.0, 120.0], [135.0, 140.0]]
    found = hearing.unheard(segments, start_s=100.0, pieces=[[100.0, 110.0], [120.0, 140.0]], silences=silences, min_speech_s=3.0)
    # [101.7, 110): 6 s of speech after the pause; [122.8, 140): 12.2 s of speech and 5 s of silence; [120, 121.7) is too short
    assert found == [(1.7, 10.0), (12.8, 30.0)]
    assert hearing.unheard(segments, start_s=100.0, pieces=[[100.0, 110.0], [120.0, 140.0]], silences=silences, min_speech_s=13.0) == []
    # an untimed segment covers its whole span
    assert hearing.unheard([{"start": 0.0, "end": 30.0, "text": "all of it"}], start_s=0.0, pieces=[[0.0, 30.0]], silences=[], min_speech_s=3.0) == []


def test_speech_at_a_chunks_edges_is_heard_again_from_a_lower_bar():
    # a chunk of [100, 130), speech throughout: 1.5 s before its first word, 1.7 s between two words, 1.8 s after its last
    segments = [timed(("Montreal", 1.8, 2.4), ("forced", 2.4, 2.8)), timed(("aligner.", 5.1, 6.0), ("Hardly", 6.2, 27.9))]
    edges = dict(start_s=100.0, pieces=[[100.0, 130.0]], silences=[], min_speech_s=3.0)
    assert hearing.unheard(segments, **edges) == []
    found = hearing.unheard(segments, **edges, edge_min_speech_s=1.0)
    assert [(round(s, 3), round(e, 3)) for s, e in found] == [(0.0, 1.5), (28.2, 30.0)]
    assert hearing.unheard(segments, **edges, edge_min_speech_s=1.9) == []


def test_what_is_heard_again_goes_between_the_words_around_it():
    # whisper heard "And I" then jumped to "think this": the stretch between is heard again
    first = [timed(("And", 0.3, 0.4), ("I", 0.4, 0.5), ("think", 7.9, 8.3), ("this.", 8.3, 8.8)), timed(("Bye.", 9.0, 9.5))]
    again = [timed(("bottle,", 0.0, 0.6), ("the", 1.2, 1.4), ("aligner.", 3.1, 3.9)), {"start": 4.0, "end": 5.0, "text": "[BLANK_AUDIO]"}]
    merged = hearing.put_in_place(first, again, (0.8, 7.5))
    assert [s["text"] for s in merged] == ["And I", "bottle, the aligner.", "think this.", "Bye."]
    assert merged[1]["words"][0]["start"] == 0.8 and merged[2]["start"] == 7.9
    assert hearing.word_count(again) == 3
    assert hearing.put_in_place(first, [{"start": 0.0, "end": 1.0, "text": "[BLANK_AUDIO]"}], (0.8, 7.5)) == first


def test_the_time_a_decoding_loop_ran_over_is_heard_again():
    loop = [("and", 2.0 + k, 2.4 + k) if k % 2 == 0 else ("so", 2.0 + k, 2.4 + k) for k in range(20)]
    segments = [timed(("Fellow", 0.2, 0.6), ("Americans,", 0.7, 1.5)), timed(*loop)]
    kept, dropped = merge.without_loops(segments)
    assert dropped == 18 and [s["text"] for s in kept] == ["Fellow Americans,", "and so"]
    assert hearing.unheard(kept, start_s=0.0, pieces=[[0.0, 22.0]], silences=[], min_speech_s=3.0) == [(3.7, 22.0)]
    untimed = [{"start": 2.0, "end": 22.0, "text": " ".join(["my fellow"] * 10)}]
    kept, dropped = merge.without_loops(untimed)
    assert dropped == 18 and kept == [{"start": 2.0, "end": 4.0, "text": "my fellow"}]  # its share of the time
    assert merge.without_loops(segments[:1]) == (segments[:1], 0)


def whisper_cli_wrapper(path, real_cli, rewrite: str, rewritten: str = '"/again-" not in name'):
    """A whisper-cli that runs the real one and then applies `rewrite` (Python, on `data`, the -ojf JSON) to the
    results of the inputs `rewritten` (Python, on the input's `name`) selects: by default first hearings of
    chunks, not hearings again (`again-<round>/`)."""
    path.parent.mkdir()
    path.write_text(f"""#!{sys.executable}
import json, os, subprocess, sys
args, outputs = sys.argv[1:], []
for i, arg in enumerate(args):
    if arg == "-f":
        source = args[i + 1]
    if arg == "-of":
        outputs.append((source, args[i + 1]))
        args[i + 1] += ".real"
code = subprocess.call([{str(real_cli)!r}, *args])
for name, out in outputs:
    if os.path.exists(out + ".real.json"):
        data = json.load(open(out + ".real.json", encoding="utf-8", errors="surrogateescape"))
        if {rewritten}:
{textwrap.indent(rewrite, " " * 12)}
        json.dump(data, open(out + ".json", "w", encoding="utf-8", errors="surrogateescape"))
sys.exit(code)
""")
    path.chmod(0o755)
    return path


@pytest.fixture
def whisper_that_loops(tmp_path, whisper_ready, monkeypatch):
    """The real whisper-cli, except that on a first hearing of a chunk everything after its first segment is one
    phrase said twelve times over, as whisper writes when its decoding loops: it cannot be made to on demand."""
    fake = whisper_cli_wrapper(tmp_path / "bin" / "whisper-cli", whisper_ready.whisper.cli, """\
first = data["transcription"][0]
data["transcription"] = [first, {"offsets": {"from": first["offsets"]["to"], "to": 22000}, "text": " And so, my fellow" * 12}]""")
    monkeypatch.setenv("WHISPER_CLI", str(fake))
    return fake


@pytest.fixture
def whisper_that_stops_early(tmp_path, whisper_ready, monkeypatch):
    """The real whisper-cli, except that on a first hearing of a chunk its result ends after the first segment, as
    whisper's does when it ends a window early: it cannot be made to on demand. Second hearings (`again-*/`) are left alone."""
    fake = whisper_cli_wrapper(tmp_path / "bin" / "whisper-cli", whisper_ready.whisper.cli, 'data["transcription"] = data["transcription"][:1]')
    monkeypatch.setenv("WHISPER_CLI", str(fake))
    return fake


@pytest.fixture
def whisper_that_stops_early_twice(tmp_path, whisper_ready, monkeypatch):
    """As whisper_that_stops_early, and the first hearing again of what it left stops after its first segment too."""
    fake = whisper_cli_wrapper(tmp_path / "bin" / "whisper-cli", whisper_ready.whisper.cli, 'data["transcription"] = data["transcription"][:1]',
                               rewritten='"/again-" not in name or "/again-1/" in name')
    monkeypatch.setenv("WHISPER_CLI", str(fake))
    return fake


@pytest.fixture
def whisper_that_times_a_hearing_again_late(tmp_path, whisper_ready, monkeypatch):
    """As whisper_that_stops_early, and the first hearing again of what it left has all its words timed in its
    last half second, as DTW times words late on hard speech: it cannot be made to on demand."""
    fake = whisper_cli_wrapper(tmp_path / "bin" / "whisper-cli", whisper_ready.whisper.cli, """\
if "/again-1/" in name:
    end = max(seg["offsets"]["to"] for seg in data["transcription"])
    for seg in data["transcription"]:
        for item in [seg, *seg.get("tokens", [])]:
            item["offsets"] = {"from": end - 500, "to": end}
            item["t_dtw"] = end // 10 if "t_dtw" in item else -1
else:
    data["transcription"] = data["transcription"][:1]""", rewritten='"/again-" not in name or "/again-1/" in name')
    monkeypatch.setenv("WHISPER_CLI", str(fake))
    return fake


def jfk_twice_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, *, min_speech_s: float, job_id: str) -> tuple[dict, float]:
    """jfk.wav twice over (22 s: one chunk) through the DAG with STT_HEAR_AGAIN_MIN_S = `min_speech_s`: the
    published transcript and its WER."""
    (tmp_path / "inbox").mkdir()
    jfk = AudioSegment.from_wav(JFK_WAV)
    (jfk + jfk).export(tmp_path / "inbox" / "jfk.wav", format="wav")
    monkeypatch.setenv("STT_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("STT_HEAR_AGAIN_MIN_S", str(min_speech_s))

    dag_run = run_transcribe(source=f"file://{tmp_path}/inbox/jfk.wav", language="en", model="tiny.en", job_id=job_id)

    assert dag_run.state == "success"
    assert jobs.find_one({"_id": job_id})["status"] == "COMPLETED"
    published = json.loads((tmp_path / "transcripts" / "jfk.wav.json").read_text())
    return published, jiwer.wer(normalise(f"{JFK_TEXT} {JFK_TEXT}"), normalise(published["text"]))


@pytest.mark.e2e
@pytest.mark.parametrize("min_speech_s", [3.0, 0.0], ids=["heard-again", "never"])
def test_speech_whisper_skipped_is_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, whisper_that_stops_early, min_speech_s):
    published, error = jfk_twice_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, min_speech_s=min_speech_s,
                                             job_id=f"hear-again-{min_speech_s:.0f}")
    [chunk] = published["chunks"]
    if min_speech_s:
        assert error <= 0.1, published["text"]
        [(start, end, words)] = chunk["heard_again"]
        assert 1.0 < start < 12.0 and end == pytest.approx(22.0, abs=0.01) and words >= 12
        assert published["segments"] == sorted(published["segments"], key=lambda s: s["start"])
    else:
        assert error > 0.5 and "heard_again" not in chunk  # the fault is real: without a second hearing, words are lost


@pytest.mark.e2e
@pytest.mark.parametrize("min_speech_s", [3.0, 0.0], ids=["heard-again", "never"])
def test_speech_a_decoding_loop_ran_over_is_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, whisper_that_loops, min_speech_s):
    published, error = jfk_twice_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, min_speech_s=min_speech_s,
                                             job_id=f"loop-{min_speech_s:.0f}")
    [chunk] = published["chunks"]
    assert published["removed"]["words"]["repeated_words"] == 44  # the loop, kept once
    if min_speech_s:
        assert error <= 0.2, published["text"]
        assert chunk["loop_words"] == 44 and chunk["heard_again"][0][2] >= 12
    else:
        assert error > 0.5 and "heard_again" not in chunk  # the fault is real: without a second hearing, words are lost


@pytest.mark.e2e
@pytest.mark.parametrize("rounds", [3, 1])
def test_speech_a_second_hearing_skipped_is_heard_once_more(run_transcribe, jobs, tmp_path, monkeypatch, whisper_that_stops_early_twice, rounds):
    monkeypatch.setattr(pipeline, "HEAR_AGAIN_ROUNDS", rounds)
    published, error = jfk_twice_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, min_speech_s=3.0, job_id=f"hear-again-rounds-{rounds}")
    [chunk] = published["chunks"]
    if rounds > 1:
        assert error <= 0.1, published["text"]
        (start, end, words), (again_start, again_end, again_words) = chunk["heard_again"]
        assert end == pytest.approx(22.0, abs=0.01) and words >= 1
        assert start < again_start < again_end <= end and again_words >= 8  # only what the first hearing again left
        assert published["segments"] == sorted(published["segments"], key=lambda s: s["start"])
    else:
        assert error > 0.2 and len(chunk["heard_again"]) == 1  # the fault is real: one hearing again leaves words out


@pytest.mark.e2e
def test_words_a_hearing_again_timed_late_are_not_heard_twice(run_transcribe, jobs, tmp_path, monkeypatch,
                                                              whisper_that_times_a_hearing_again_late):
    published, error = jfk_twice_transcribed(run_transcribe, jobs, tmp_path, monkeypatch, min_speech_s=3.0, job_id="hear-again-late")
    [chunk] = published["chunks"]
    [(start, end, words)] = chunk["heard_again"]  # the speech before its words is not heard a third time
    assert end == pytest.approx(22.0, abs=0.01) and words >= 12
    assert error <= 0.1, published["text"]  # nothing written twice
