"""Where sources, outputs and work files live (no servers needed)."""

from __future__ import annotations

import pytest

from stt.config import Settings
from stt.errors import InvalidSource
from stt.storage import locate


@pytest.fixture
def settings(tmp_path):
    return Settings().updated(storage={"local_root": tmp_path})


def test_s3_source_outputs_drop_inbox_prefix(settings):
    loc = locate("s3://media/inbox/calls/2026/a b.mp3", settings)
    assert (loc.root, loc.relative, loc.extension) == ("s3://media", "inbox/calls/2026/a b.mp3", ".mp3")
    assert loc.output_uri(settings, "srt") == "s3://media/transcripts/calls/2026/a b.mp3.srt"
    assert loc.work_uri(settings, "job-1", "chunks") == "s3://media/work/job-1/chunks"


def test_file_source_under_local_root(settings, tmp_path):
    loc = locate(f"file://{tmp_path}/inbox/talk.wav", settings)
    assert loc.root == f"file://{tmp_path}"
    assert loc.output_uri(settings, "txt") == f"file://{tmp_path}/transcripts/talk.wav.txt"


def test_sources_with_one_stem_publish_to_different_names(settings):
    names = {locate(f"s3://media/inbox/a.{ext}", settings).output_uri(settings, "txt") for ext in ("mp3", "wav", "m4a")}
    assert names == {"s3://media/transcripts/a.mp3.txt", "s3://media/transcripts/a.wav.txt", "s3://media/transcripts/a.m4a.txt"}


@pytest.mark.parametrize(
    "uri, words",
    [
        ("", "empty"),
        ("http://example.com/a.wav", "unsupported scheme"),
        ("s3:///key.wav", "no bucket"),
        ("s3://bucket/inbox/../../etc/passwd", "leave its storage root"),
        ("file:///data/../etc/passwd", "leave its storage root"),
        ("/srv/audio/lecture.flac", "outside the storage root"),
        ("file:///etc/passwd", "outside the storage root"),
        ("s3://bucket/inbox/", "folder"),
        ("file://relative/path.wav", "absolute"),
    ],
)
def test_bad_sources_are_refused_with_a_reason(settings, uri, words):
    with pytest.raises(InvalidSource, match=words):
        locate(uri, settings)
