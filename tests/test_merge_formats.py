"""Merging chunk results and rendering the published formats."""

from __future__ import annotations

import json

from stt.formats import render
from stt.merge import merge_chunks, shift_segments


def chunk(index, start, end, segments, language="en"):
    return {"index": index, "start_s": start, "end_s": end, "cut": "fixed", "language": language, "segments": segments}


def test_shift_is_by_chunk_start():
    assert shift_segments([{"start": 1.0, "end": 2.5, "text": "hi"}], 30.0) == [{"start": 31.0, "end": 32.5, "text": "hi"}]


def test_merge_orders_chunks_and_offsets_times():
    merged = merge_chunks([
        chunk(1, 30.0, 60.0, [{"start": 0.5, "end": 4.0, "text": "second"}]),
        chunk(0, 0.0, 30.0, [{"start": 0.0, "end": 3.0, "text": "first"}], language="vi"),
    ])
    assert merged["text"] == "first second"
    assert [s["start"] for s in merged["segments"]] == [0.0, 30.5]
    assert [c["index"] for c in merged["chunks"]] == [0, 1]
    assert merged["language"] in ("en", "vi")


def test_dominant_language_is_weighted_by_duration():
    merged = merge_chunks([chunk(0, 0, 5, [], "vi"), chunk(1, 5, 65, [], "en")])
    assert merged["language"] == "en"


TRANSCRIPT = {"language": "en", "segments": [
    {"start": 0.0, "end": 2.5, "text": "Hello there."},
    {"start": 3661.25, "end": 3662.0, "text": "An hour later."},
], "text": "Hello there. An hour later."}


def test_srt_and_vtt_timestamps():
    srt = render(TRANSCRIPT, "srt")
    assert srt.splitlines()[:3] == ["1", "00:00:00,000 --> 00:00:02,500", "Hello there."]
    assert "01:01:01,250 --> 01:01:02,000" in srt
    vtt = render(TRANSCRIPT, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n")


def test_txt_and_json():
    assert render(TRANSCRIPT, "txt") == "Hello there.\nAn hour later.\n"
    assert json.loads(render(TRANSCRIPT, "json")) == TRANSCRIPT
