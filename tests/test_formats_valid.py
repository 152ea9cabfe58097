"""The published SRT and VTT parse with standard parsers (srt, webvtt-py) and say what the transcript says."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import srt
import webvtt

from stt.formats import render
from stt.merge import merge_chunks

TRICKY = {
    "language": "vi",
    "model": "base",
    "duration_s": 7300.0,
    "segments": [
        {"start": 0.0, "end": 2.5, "text": "Hôm nay trời đẹp."},
        {"start": 2.5, "end": 2.5, "text": "A <b>bold</b> & odd --> line"},
        {"start": 3.0, "end": 4.0, "text": "two\nlines\n\nwith a blank"},
        {"start": 5.0, "end": 6.0, "text": "   "},
        {"start": 7261.234, "end": 7262.0, "text": "Two hours later."},
    ],
    "text": "",
    "chunks": [],
}
EXPECTED = [
    (0.0, 2.5, "Hôm nay trời đẹp."),
    (2.5, 2.51, "A <b>bold</b> & odd -> line"),
    (3.0, 4.0, "two lines with a blank"),
    (7261.234, 7262.0, "Two hours later."),
]


def test_srt_parses_with_the_srt_library():
    cues = list(srt.parse(render(TRICKY, "srt")))
    assert [c.index for c in cues] == [1, 2, 3, 4]
    got = [(c.start / timedelta(seconds=1), c.end / timedelta(seconds=1), c.content) for c in cues]
    assert got == EXPECTED
    assert all(c.end > c.start for c in cues)


def test_vtt_parses_with_webvtt_py():
    cues = list(webvtt.from_string(render(TRICKY, "vtt")))
    got = [(c.start_in_seconds + c.start_time.milliseconds / 1000, c.end_in_seconds + c.end_time.milliseconds / 1000, html.unescape(c.text)) for c in cues]
    assert got == EXPECTED
    assert "&amp;" in cues[1].text and "&lt;b&gt;" in cues[1].text


def test_txt_has_one_line_per_segment_with_text():
    assert render(TRICKY, "txt").splitlines() == [text for *_, text in EXPECTED]


def test_a_merged_transcript_renders_in_every_format():
    """Words, chunk map and all: the JSON keeps words with times, SRT/VTT carry the segments."""
    seg = {"start": 0.2, "end": 1.6, "text": "Hello there.", "words": [
        {"start": 0.2, "end": 0.7, "text": "Hello"}, {"start": 0.7, "end": 1.6, "text": "there."}]}
    merged = merge_chunks([{"index": 0, "start_s": 30.0, "end_s": 60.0, "language": "en", "segments": [seg]}])
    transcript = {"language": merged["language"], "model": "base", "duration_s": 60.0, **merged}
    data = json.loads(render(transcript, "json"))
    assert data["segments"][0]["words"] == [{"start": 30.2, "end": 30.7, "text": "Hello"}, {"start": 30.7, "end": 31.6, "text": "there."}]
    assert data["chunks"][0]["start"] == 30.0 and data["language"] == "en"
    (cue,) = srt.parse(render(transcript, "srt"))
    assert (cue.start, cue.end, cue.content) == (timedelta(seconds=30.2), timedelta(seconds=31.6), "Hello there.")
    (caption,) = webvtt.from_string(render(transcript, "vtt"))
    assert (caption.start, caption.end, caption.text) == ("00:00:30.200", "00:00:31.600", "Hello there.")


def test_empty_transcript_is_still_valid():
    empty = {"language": "en", "segments": [], "text": "", "chunks": []}
    assert list(srt.parse(render(empty, "srt"))) == []
    assert list(webvtt.from_string(render(empty, "vtt"))) == []
    assert render(empty, "txt") == ""
