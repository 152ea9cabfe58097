"""`stt submit` argument expansion (files, folders, globs, URIs, duplicates), refusals, and the progress line, without servers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from stt.cli import BatchState, CliConfig, ProgressLine, Submitter, Target, build_parser, expand_targets, published_output
from stt.config import Settings


@pytest.fixture
def recordings(tmp_path) -> Path:
    """recordings/ with media at two levels, a hidden file, a non-media file, and a same-named file elsewhere."""
    root = tmp_path / "recordings"
    for name in ("b.mp3", "a.wav", "notes.txt", ".hidden.mp3", "day2/c.MP3", "day2/a.wav", ".cache/d.mp3"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"RIFF")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.wav").write_bytes(b"RIFF")
    return root


def local(targets):
    return [(t.local.name, t.upload_name) for t in targets]


def test_a_folder_gives_its_media_files_recursively_with_their_relative_names(recordings):
    targets, problems = expand_targets([str(recordings)], Settings())
    assert problems == []
    assert local(targets) == [("a.wav", "recordings/a.wav"), ("b.mp3", "recordings/b.mp3"),
                              ("a.wav", "recordings/day2/a.wav"), ("c.MP3", "recordings/day2/c.MP3")]


def test_a_quoted_glob_is_expanded_by_the_cli_in_name_order(recordings):
    targets, problems = expand_targets([f"{recordings}/*.mp3", f"{recordings}/**/*.MP3"], Settings())
    assert problems == []
    assert local(targets) == [("b.mp3", "b.mp3"), ("c.MP3", "c.MP3")]


def test_the_same_file_given_many_ways_is_submitted_once(recordings, monkeypatch):
    monkeypatch.chdir(recordings)
    (recordings / "link.wav").symlink_to(recordings / "a.wav")
    args = ["a.wav", str(recordings / "a.wav"), "./a.wav", "*.wav", str(recordings), "b.mp3"]
    targets, problems = expand_targets(args, Settings())
    assert problems == []
    assert [t.local.resolve() for t in targets] == [recordings / "a.wav", recordings / "b.mp3", recordings / "day2/a.wav", recordings / "day2/c.MP3"]


def test_two_files_uploading_under_one_name_and_an_argument_matching_nothing_are_reported(recordings, tmp_path):
    targets, problems = expand_targets([str(recordings / "a.wav"), str(tmp_path / "other" / "a.wav"), str(tmp_path / "none*.mp3"),
                                        str(tmp_path / "missing.wav")], Settings())
    assert local(targets) == [("a.wav", "a.wav")]
    assert len(problems) == 3
    assert "same name" in problems[0] and str(tmp_path / "other" / "a.wav") in problems[0]
    assert "none*.mp3" in problems[1] and "missing.wav" in problems[2]


def test_uris_are_kept_as_given_and_a_uri_folder_or_glob_lists_its_objects(recordings):
    settings = Settings().updated(storage={"local_root": recordings.parent.resolve()})
    plain = "s3://bucket/inbox/x #1.mp3"
    unsupported = "ftp://host/*.mp3"
    targets, problems = expand_targets([plain, plain, unsupported, f"file://{recordings}/", f"file://{recordings}/day2/*.wav"], settings)
    assert problems == []
    assert [t.uri for t in targets] == [plain, unsupported, f"file://{recordings}/a.wav", f"file://{recordings}/b.mp3",
                                        f"file://{recordings}/day2/a.wav", f"file://{recordings}/day2/c.MP3"]


def test_a_source_outside_the_storage_roots_is_refused_with_its_reason_before_any_upload(recordings, tmp_path):
    settings = Settings().updated(storage={"local_root": recordings.resolve()})
    cfg = CliConfig(airflow_url="http://127.0.0.1:9", user="", password="", mongo_url="", upload_uri=f"file://{tmp_path}/elsewhere/inbox/",
                    settings=settings)
    submitter = Submitter(cfg, settings, store=None, conf={})
    outside = submitter.submit(Target(uri=f"file://{tmp_path}/other/a.wav"))
    assert (outside.state, outside.message.split("]")[0]) == ("refused", "[SOURCE_OUTSIDE_ROOT")
    upload = submitter.submit(Target(local=recordings / "a.wav", upload_name="a.wav"))
    assert upload.state == "refused" and "outside the storage root" in upload.message
    assert not (tmp_path / "elsewhere").exists()
    own = submitter.submit(Target(uri=f"file://{recordings}/transcripts/a.wav.txt"))
    assert own.state == "refused" and "pipeline's own files" in own.message
    missing = submitter.submit(Target(uri=f"file://{recordings}/never.wav"))
    assert missing.state == "refused" and missing.message.startswith("[SOURCE_NOT_FOUND]")
    other_scheme = submitter.submit(Target(uri="http://example.invalid/a.wav"))
    assert other_scheme.state == "refused" and "unsupported scheme" in other_scheme.message


def test_submit_takes_many_targets_and_result_prefers_txt_then_the_first_published():
    args = build_parser().parse_args(["submit", "a.mp3", "b.mp3", "recordings/", "--wait", "--model", "tiny.en"])
    assert args.targets == ["a.mp3", "b.mp3", "recordings/"] and args.wait and args.model == "tiny.en"
    assert build_parser().parse_args(["result", "job"]).format is None
    outputs = {"outputs": {"srt": "s3://b/x.srt", "json": "s3://b/x.json", "txt": "s3://b/x.txt"}}
    assert published_output(outputs) == ("txt", "s3://b/x.txt")
    assert published_output({"outputs": {"vtt": "s3://b/x.vtt", "json": "s3://b/x.json"}}) == ("vtt", "s3://b/x.vtt")
    assert published_output(outputs, "json") == ("json", "s3://b/x.json")
    assert published_output({}) == (None, None)


def test_the_progress_line_counts_jobs_audio_hours_and_real_time_factor_and_is_plain_without_a_terminal():
    docs = [{"status": "COMPLETED", "duration_s": 1800.0}, {"status": "COMPLETED", "duration_s": 1800.0}, {"status": "FAILED"}, {"status": "PROCESSING"}]
    state = BatchState.of(docs, total=5, wall_s=600.0)
    assert (state.done, state.failed, state.finished, state.audio_s, state.speed) == (2, 1, 3, 3600.0, 6.0)
    assert state.line(width=10) == "[######....] 2/5 done, 1 failed · 1.000 h audio · 6.00x real time · 10:00"
    stream = io.StringIO()
    progress = ProgressLine(stream, every_s=3600)
    progress.show(state)
    progress.show(state)  # unchanged counts within the interval: no new line
    progress.show(BatchState.of(docs[:3] + [{"status": "COMPLETED"}], total=5, wall_s=601.0))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[1].startswith("[" + "#" * 19 + "." * 5 + "] 3/5 done, 1 failed")
