"""Hostile input: nothing a caller sends can touch the host, and no job is lost, duplicated or mislabelled.

Real servers throughout (dag.test() with whisper.cpp, the moto S3 server, nx-27017); a canary folder outside
every root must come through every case unchanged.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from pydub import AudioSegment

from conftest import JFK_TEXT, JFK_WAV, REPO, normalise
from stt.waiting import poll_until, wait_until

pytestmark = pytest.mark.e2e


def listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    """A folder outside every storage and scratch root, with media in it: it must never change."""
    folder = tmp_path_factory.mktemp("canary-outside-every-root")
    (folder / "keep.txt").write_text("canary\n")
    shutil.copy(JFK_WAV, folder / "secret talk.wav")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.txt").write_text("nested\n")
    before = listing(folder)
    yield folder
    assert listing(folder) == before


@pytest.fixture(autouse=True)
def canary_intact(canary):
    before = listing(canary)
    yield
    assert listing(canary) == before, "something outside every root was written or deleted"


@pytest.fixture
def root(tmp_path, monkeypatch, s3_server):
    """A local storage root with an inbox; small limits, as a deployment would set them."""
    storage = tmp_path / "storage"
    (storage / "inbox").mkdir(parents=True)
    monkeypatch.setenv("STT_LOCAL_ROOT", str(storage))
    monkeypatch.setenv("STT_MAX_DURATION_S", "60")
    monkeypatch.delenv("STT_INBOX_URIS", raising=False)
    return storage


@pytest.fixture
def settings(root):
    from stt.config import Settings

    return Settings.from_env()


@pytest.fixture
def store(mongo_server, settings):
    from stt.jobs import JobStore

    return JobStore.from_airflow(settings)


def error_code(jobs, job_id):
    doc = jobs.find_one({"_id": job_id})
    assert doc is not None, f"no job {job_id}"
    return doc["status"], (doc.get("error") or {}).get("code")


def assert_clean(settings, root, job_id):
    """No work folder, no scratch and no partial file left for the job."""
    assert not (root / settings.storage.work_prefix / job_id).exists()
    assert not (settings.storage.scratch_dir / job_id).exists()
    assert not [p for p in root.rglob("*") if p.name.endswith((".part", ".part.wav"))]


# --- identifiers are data, never paths -----------------------------------------------------------------------


BAD_JOB_IDS = ["/tmp/somedir", "../../etc", "a/b", ".hidden", "", "x" * 129, "job\nid", "..", "a b"]


@pytest.mark.parametrize("job_id", BAD_JOB_IDS)
def test_a_job_id_that_is_not_an_identifier_is_refused_in_code(job_id, settings):
    from stt.errors import InvalidJobId
    from stt.jobs import check_job_id
    from stt.pipeline import scratch_dir
    from stt.storage import locate

    with pytest.raises(InvalidJobId):
        check_job_id(job_id)
    with pytest.raises(InvalidJobId):
        scratch_dir(settings, job_id)
    with pytest.raises(InvalidJobId):
        locate("s3://bucket/inbox/a.wav", settings).work_uri(settings, job_id)


def test_a_path_as_job_id_is_refused_by_the_trigger_schema_and_nothing_is_deleted(run_transcribe, root, canary):
    from airflow.sdk.definitions.param import ParamValidationError

    shutil.copy(JFK_WAV, root / "inbox" / "jfk.wav")
    with pytest.raises(ParamValidationError, match="job_id"):
        run_transcribe(source=f"file://{root}/inbox/jfk.wav", language="en", model="tiny.en", job_id=str(canary))
    assert canary.is_dir()


def test_a_path_as_job_id_is_refused_again_in_the_validate_step(store, settings, root, jobs):
    """A caller that skips the schema (an older DAG version, a direct call) still gets INVALID_JOB_ID."""
    from stt import pipeline
    from stt.task_runtime import job_id_for
    from stt.errors import InvalidJobId

    conf = {"source": f"file://{root}/inbox/a.wav", "job_id": "../../escape"}
    job_id = job_id_for("stt_transcribe", "manual__x", conf)
    assert job_id.startswith("job-"), "an invalid id must never be used, not even for the record"
    with pytest.raises(InvalidJobId):
        pipeline.validate(conf, job_id=job_id, dag_id="stt_transcribe", run_id="manual__x", settings=settings, store=store)
    assert not (root.parent / "escape").exists()


def test_folders_are_created_and_deleted_only_inside_their_root(settings, root, canary, tmp_path):
    from stt import storage
    from stt.errors import PathOutsideRoot

    (root / "work" / "link").parent.mkdir(parents=True)
    (root / "work" / "link").symlink_to(canary)
    for uri in (f"file://{canary}", f"file://{root}/work/link", f"file://{root}", f"file://{root}/../"):
        with pytest.raises(PathOutsideRoot):
            storage.delete_tree(uri, settings)
    with pytest.raises(PathOutsideRoot):
        storage.inside(root, root / "work" / "link" / "keep.txt")


# --- sources are confined ------------------------------------------------------------------------------------


def test_system_files_are_refused_before_anything_is_read(run_transcribe, root, jobs):
    run_transcribe(source="file:///etc/passwd", job_id="hostile-passwd")
    assert error_code(jobs, "hostile-passwd") == ("FAILED", "SOURCE_OUTSIDE_ROOT")


def test_media_outside_the_storage_root_is_refused_and_nothing_is_written_beside_it(run_transcribe, root, jobs, canary):
    run_transcribe(source=f"file://{canary}/secret talk.wav", language="en", model="tiny.en", job_id="hostile-outside")
    assert error_code(jobs, "hostile-outside") == ("FAILED", "SOURCE_OUTSIDE_ROOT")
    assert not (canary / "transcripts").exists() and not (canary.parent / "transcripts").exists()


def test_a_symlink_in_the_root_that_points_outside_is_refused(run_transcribe, root, jobs, canary):
    (root / "inbox" / "talk.wav").symlink_to(canary / "secret talk.wav")
    run_transcribe(source=f"file://{root}/inbox/talk.wav", language="en", model="tiny.en", job_id="hostile-symlink")
    assert error_code(jobs, "hostile-symlink") == ("FAILED", "SOURCE_OUTSIDE_ROOT")


def test_symlinks_in_the_inbox_that_point_outside_are_not_ingested(store, settings, root, canary):
    from stt.ingest import scan_and_claim

    shutil.copy(JFK_WAV, root / "inbox" / "real.wav")
    (root / "inbox" / "linked.wav").symlink_to(canary / "secret talk.wav")
    (root / "inbox" / "linked folder").symlink_to(canary, target_is_directory=True)
    past = time.time() - 60
    for p in (root / "inbox").iterdir():
        os.utime(p, (past, past), follow_symlinks=False)
    requests = scan_and_claim(settings=settings, store=store, claimed_by="test")
    assert [r["conf"]["source"] for r in requests] == [f"file://{root}/inbox/real.wav"]


def test_a_source_outside_the_allowed_prefixes_is_refused(run_transcribe, root, jobs, s3_server, monkeypatch):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="elsewhere")
    s3.upload_file(str(JFK_WAV), "elsewhere", "private/jfk.wav")
    monkeypatch.setenv("STT_ALLOWED_SOURCES", "s3://media/inbox/")
    run_transcribe(source="s3://elsewhere/private/jfk.wav", language="en", model="tiny.en", job_id="hostile-bucket")
    assert error_code(jobs, "hostile-bucket") == ("FAILED", "SOURCE_OUTSIDE_ROOT")


def test_the_pipelines_own_files_are_not_sources(run_transcribe, root, jobs):
    (root / "transcripts").mkdir()
    shutil.copy(JFK_WAV, root / "transcripts" / "x.wav")
    run_transcribe(source=f"file://{root}/transcripts/x.wav", language="en", model="tiny.en", job_id="hostile-own")
    assert error_code(jobs, "hostile-own") == ("FAILED", "SOURCE_IN_PIPELINE_AREA")


def test_an_inbox_at_the_bucket_root_does_not_ingest_work_or_transcripts(store, settings, s3_server):
    from stt.ingest import scan_and_claim

    s3 = s3_server.client()
    s3.create_bucket(Bucket="whole")
    for key in ("inbox/a.wav", "top.wav", "work/job-1/chunks/chunk-00000.wav", "transcripts/a.wav.json"):
        s3.upload_file(str(JFK_WAV), "whole", key)
    settings = settings.updated(ingest={"inbox_uris": ("s3://whole/",)})
    sources = sorted(r["conf"]["source"] for r in scan_and_claim(settings=settings, store=store, claimed_by="test"))
    assert sources == ["s3://whole/inbox/a.wav", "s3://whole/top.wav"]


def test_a_bulk_inbox_is_claimed_largest_first(store, settings, s3_server):
    """Runs start in the order they are triggered: long recordings first, short ones fill the whisper slots' gaps."""
    from stt.ingest import scan_and_claim

    s3 = s3_server.client()
    s3.create_bucket(Bucket="bulk")
    sizes = {"inbox/a-short.wav": 2, "inbox/b-long.wav": 9, "inbox/c-mid.wav": 5}
    whole = JFK_WAV.read_bytes()
    for key, parts in sizes.items():
        s3.put_object(Bucket="bulk", Key=key, Body=whole[: len(whole) * parts // 10])
    settings = settings.updated(ingest={"inbox_uris": ("s3://bulk/inbox/",)})
    sources = [r["conf"]["source"] for r in scan_and_claim(settings=settings, store=store, claimed_by="test")]
    assert sources == ["s3://bulk/inbox/b-long.wav", "s3://bulk/inbox/c-mid.wav", "s3://bulk/inbox/a-short.wav"]


# --- crafted media -------------------------------------------------------------------------------------------


def test_a_playlist_named_wav_is_refused_and_opens_nothing(run_transcribe, root, jobs, canary):
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:11,\n{canary}/secret talk.wav\n#EXT-X-ENDLIST\n"
    (root / "inbox" / "playlist.wav").write_text(playlist)
    run_transcribe(source=f"file://{root}/inbox/playlist.wav", language="en", model="tiny.en", job_id="hostile-hls")
    assert error_code(jobs, "hostile-hls") == ("FAILED", "UNSUPPORTED_CONTAINER")


def test_a_concat_list_named_mp3_is_refused(run_transcribe, root, jobs, canary):
    (root / "inbox" / "list.mp3").write_text(f"ffconcat version 1.0\nfile '{canary}/secret talk.wav'\n")
    run_transcribe(source=f"file://{root}/inbox/list.mp3", language="en", model="tiny.en", job_id="hostile-concat")
    assert error_code(jobs, "hostile-concat") == ("FAILED", "UNSUPPORTED_CONTAINER")


def test_a_playlist_pointing_at_the_network_makes_no_request(run_transcribe, root, jobs):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    (root / "inbox" / "net.wav").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:{port}/a.ts\n#EXT-X-ENDLIST\n")
    run_transcribe(source=f"file://{root}/inbox/net.wav", language="en", model="tiny.en", job_id="hostile-net")
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert error_code(jobs, "hostile-net") == ("FAILED", "UNSUPPORTED_CONTAINER")


def test_a_header_that_understates_the_length_is_caught_on_what_is_decoded(run_transcribe, root, jobs, settings):
    """A Matroska file whose header says 5 s around 99 s of audio: ffprobe believes the header, the decode (capped
    just past the limit) does not; the job fails, and its work files and scratch are gone."""
    crafted = root / "inbox" / "short looking.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "8", "-i", str(JFK_WAV), "-c:a", "flac", str(crafted)], check=True)
    data = bytearray(crafted.read_bytes())
    at = data.find(b"\x44\x89\x88")  # the segment's Duration element: an 8-byte float, in milliseconds
    data[at + 3 : at + 11] = struct.pack(">d", 5000.0)
    crafted.write_bytes(bytes(data))
    from stt import audio

    assert audio.probe(crafted).duration_s < 10, "the crafted header must understate the length"
    run_transcribe(source=f"file://{crafted}", language="en", model="tiny.en", job_id="hostile-long")
    assert error_code(jobs, "hostile-long") == ("FAILED", "DURATION_TOO_LONG")
    assert_clean(settings, root, "hostile-long")


# --- what was claimed is what is transcribed -----------------------------------------------------------------


def test_a_local_source_changed_after_its_claim_fails_and_the_new_content_is_a_new_job(run_transcribe, root, jobs, store, settings):
    from stt import storage
    from stt.ingest import job_id_for_object, scan_and_claim

    path = root / "inbox" / "talk.wav"
    shutil.copy(JFK_WAV, path)
    os.utime(path, (time.time() - 60, time.time() - 60))
    claimed = scan_and_claim(settings=settings, store=store, claimed_by="test")
    assert len(claimed) == 1
    first = claimed[0]["conf"]
    (AudioSegment.from_wav(JFK_WAV) * 2).export(path, format="wav")
    os.utime(path, (time.time() - 60, time.time() - 60))
    run_transcribe(**{k: first[k] for k in ("source", "etag", "job_id", "language", "model")})
    assert error_code(jobs, first["job_id"]) == ("FAILED", "SOURCE_CHANGED")
    again = scan_and_claim(settings=settings, store=store, claimed_by="test")
    assert [r["conf"]["job_id"] for r in again] == [job_id_for_object(storage.object_info(f"file://{path}", settings))]
    assert again[0]["conf"]["job_id"] != first["job_id"]


def test_an_s3_object_overwritten_after_its_claim_fails_with_source_changed(run_transcribe, root, jobs, s3_server):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="changing")
    s3.upload_file(str(JFK_WAV), "changing", "inbox/a.wav")
    claimed_etag = s3.head_object(Bucket="changing", Key="inbox/a.wav")["ETag"].strip('"')
    (AudioSegment.from_wav(JFK_WAV) * 2).export(root / "other.wav", format="wav")
    s3.upload_file(str(root / "other.wav"), "changing", "inbox/a.wav")
    run_transcribe(source="s3://changing/inbox/a.wav", etag=claimed_etag, language="en", model="tiny.en", job_id="hostile-s3-changed")
    assert error_code(jobs, "hostile-s3-changed") == ("FAILED", "SOURCE_CHANGED")


# --- no orphans ----------------------------------------------------------------------------------------------


def children_running(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_gone(marker: str, timeout_s: float = 10.0) -> list[psutil.Process]:
    poll_until(lambda: not children_running(marker), timeout_s=timeout_s, interval_s=0.1)
    return children_running(marker)


@pytest.fixture
def long_wavs(tmp_path):
    """Two 33 s recordings in a folder whose name marks the processes that read them."""
    folder = tmp_path / f"orphan-check-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    speech = AudioSegment.from_wav(JFK_WAV) * 3
    paths = [folder / f"part{i}.wav" for i in range(2)]
    for p in paths:
        speech.export(p, format="wav")
    return paths


def whisper_options(settings, **extra):
    return {"cli": settings.whisper.cli, "model_path": settings.whisper.model_path("base"), "language": "en", "threads": 1, "timeout_s": 300, **extra}


def test_whisper_is_killed_when_storing_a_result_raises(long_wavs, settings, whisper_ready):
    from stt import whisper

    def store_fails(i, run):
        raise RuntimeError("the result store is down")

    with pytest.raises(RuntimeError):
        whisper.transcribe_many(long_wavs, on_result=store_fails, **whisper_options(settings))
    assert not wait_gone(long_wavs[0].parent.name, 2.0)


def test_whisper_is_killed_on_its_timeout(long_wavs, settings, whisper_ready):
    from stt import whisper
    from stt.errors import WhisperTimeout

    with pytest.raises(WhisperTimeout):
        whisper.transcribe_many(long_wavs, on_result=lambda i, run: None, **whisper_options(settings, timeout_s=1.0))
    assert not wait_gone(long_wavs[0].parent.name, 2.0)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["task-killed", "task-interrupted"])
def test_whisper_dies_with_the_task_process_that_started_it(how, long_wavs, settings, whisper_ready):
    """A task process killed from the UI or by a lost heartbeat (SIGINT, then SIGKILL from Airflow's supervisor)."""
    code = textwrap.dedent(f"""
        from pathlib import Path
        from stt import whisper
        whisper.transcribe_many([Path(p) for p in {[str(p) for p in long_wavs]!r}], cli=Path({str(settings.whisper.cli)!r}),
            model_path=Path({str(settings.whisper.model_path("base"))!r}), language="en", threads=1, timeout_s=300, on_result=lambda i, r: None)
    """)
    task = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    marker = long_wavs[0].parent.name
    wait_until(lambda: children_running(marker), timeout_s=60, interval_s=0.1, what="whisper-cli to start")
    time.sleep(1.0)
    task.send_signal(how)
    task.wait(30)
    assert not wait_gone(marker), "whisper-cli outlived the task process"


def test_ffmpeg_is_killed_on_its_timeout(tmp_path):
    from stt import audio
    from stt.errors import TransientError

    folder = tmp_path / f"ffmpeg-orphan-{time.monotonic_ns()}"
    folder.mkdir()
    (AudioSegment.from_wav(JFK_WAV) * 60).export(folder / "eleven minutes.wav", format="wav")
    with pytest.raises(TransientError, match="took longer"):
        audio.decode_to_wav(folder / "eleven minutes.wav", folder / "out.wav", timeout_s=0.01)
    assert not wait_gone(folder.name, 2.0)
    assert not [p.name for p in folder.iterdir() if "part" in p.name]


# --- deterministic crashes fail fast -------------------------------------------------------------------------


def test_whisper_crashing_twice_on_a_chunk_fails_the_job_naming_the_chunk(run_transcribe, root, jobs, settings, tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "whisper-cli"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport os\nos.abort()\n")
    fake.chmod(0o755)
    monkeypatch.setenv("WHISPER_CLI", str(fake))
    shutil.copy(JFK_WAV, root / "inbox" / "crash.wav")
    dag_run = run_transcribe(source=f"file://{root}/inbox/crash.wav", language="en", model="tiny.en", job_id="hostile-crash")
    assert dag_run.state == "failed"
    doc = jobs.find_one({"_id": "hostile-crash"})
    assert doc["status"] == "FAILED" and doc["error"]["code"] == "WHISPER_CRASHED"
    assert "chunk 0" in doc["error"]["message"] and "SIGABRT" in doc["error"]["message"]
    assert doc["retry_count"] == 1, "the second crash must not be retried"
    assert doc["chunks"]["0"]["crashes"] == 2
    assert_clean(settings, root, "hostile-crash")


# --- finished stays finished; outputs never collide ----------------------------------------------------------


@pytest.fixture
def two_stems(run_transcribe, root, jobs):
    """inbox/a.wav and inbox/a.mp3 (the same speech), both transcribed."""
    shutil.copy(JFK_WAV, root / "inbox" / "a.wav")
    AudioSegment.from_wav(JFK_WAV).export(root / "inbox" / "a.mp3", format="mp3")
    runs = {name: run_transcribe(source=f"file://{root}/inbox/{name}", language="en", model="tiny.en", job_id=f"hostile-stem-{name[-3:]}")
            for name in ("a.wav", "a.mp3")}
    assert {r.state for r in runs.values()} == {"success"}
    return runs


def test_sources_with_one_stem_publish_to_different_names(two_stems, root, jobs):
    for ext in ("wav", "mp3"):
        doc = jobs.find_one({"_id": f"hostile-stem-{ext}"})
        assert doc["status"] == "COMPLETED"
        assert doc["outputs"]["txt"] == f"file://{root}/transcripts/a.{ext}.txt"
        assert normalise((root / "transcripts" / f"a.{ext}.txt").read_text()) == normalise(JFK_TEXT)


def test_steps_of_a_completed_run_run_again_change_nothing(two_stems, root, jobs, store, settings):
    """As when a user clears a finished run's later task: publish, merge, transcribe and chunk find the job
    COMPLETED by their run and leave it, its counters and its transcripts as they are."""
    from stt import pipeline

    before = jobs.find_one({"_id": "hostile-stem-wav"})
    published = {p: p.read_text() for p in (root / "transcripts").iterdir()}
    job = {"job_id": "hostile-stem-wav", "run_id": before["run_id"], "source": before["source"]}
    assert pipeline.publish(job, {"transcript_uri": "file:///gone.json"}, settings=settings, store=store) == before["outputs"]
    assert pipeline.merge(job, [], settings=settings, store=store)["transcript_uri"] is None
    assert pipeline.transcribe(job, {"batch": 0, "chunks": []}, settings=settings, store=store)["results"] == []
    assert pipeline.chunk(job, settings=settings, store=store) == []
    after = jobs.find_one({"_id": "hostile-stem-wav"})
    assert {k: after[k] for k in ("status", "chunks_completed", "chunks_total", "outputs", "retry_count")} == \
           {k: before[k] for k in ("status", "chunks_completed", "chunks_total", "outputs", "retry_count")}
    assert {p: p.read_text() for p in (root / "transcripts").iterdir()} == published


def test_a_late_failure_never_turns_a_completed_job_into_failed(two_stems, jobs, store):
    from stt.callbacks import record_run_failure

    doc = jobs.find_one({"_id": "hostile-stem-mp3"})
    assert store.fail("hostile-stem-mp3", code="LATE", message="a late callback", step="publish", run_id=doc["run_id"]) is False
    record_run_failure(SimpleNamespace(dag_id="stt_transcribe", run_id=doc["run_id"], conf={"job_id": "hostile-stem-mp3", "source": doc["source"]}), "late")
    assert error_code(jobs, "hostile-stem-mp3") == ("COMPLETED", None)


def test_clearing_a_finished_run_from_the_start_transcribes_again_with_consistent_counters(two_stems, run_transcribe, root, jobs):
    before = jobs.find_one({"_id": "hostile-stem-wav"})
    again = run_transcribe(source=f"file://{root}/inbox/a.wav", language="en", model="tiny.en", job_id="hostile-stem-wav")
    assert again.state == "success"
    doc = jobs.find_one({"_id": "hostile-stem-wav"})
    assert doc["status"] == "COMPLETED" and doc["run_id"] != before["run_id"]
    assert doc["chunks_completed"] == doc["chunks_total"] == before["chunks_total"]
    assert normalise((root / "transcripts" / "a.wav.txt").read_text()) == normalise(JFK_TEXT)


def test_a_retried_batch_counts_a_chunk_whose_result_was_stored_but_not_counted(root, jobs, store, settings, whisper_ready):
    from stt import pipeline

    shutil.copy(JFK_WAV, root / "inbox" / "count.wav")
    params = {"source": f"file://{root}/inbox/count.wav", "language": "en", "model": "tiny.en"}
    job = pipeline.validate(params, job_id="hostile-count", dag_id="stt_transcribe", run_id="manual__count", settings=settings, store=store)
    (batch,) = pipeline.chunk(job, settings=settings, store=store)
    pipeline.transcribe(job, batch, settings=settings, store=store, attempt=1)
    # the count of the first try was lost (MongoDB did not take the write), its result is in the work folder
    jobs.update_one({"_id": "hostile-count"}, {"$set": {"chunks_completed": 0, "chunks.0.status": "PROCESSING"}})
    result = pipeline.transcribe(job, batch, settings=settings, store=store, attempt=2)
    doc = jobs.find_one({"_id": "hostile-count"})
    assert doc["chunks_completed"] == doc["chunks_total"] == len(result["results"]) == 1
    assert doc["chunks"]["0"]["status"] == "COMPLETED"
    merged = pipeline.merge(job, [result], settings=settings, store=store)
    pipeline.publish(job, merged, settings=settings, store=store)
    assert normalise((root / "transcripts" / "count.wav.txt").read_text()) == normalise(JFK_TEXT)
    assert_clean(settings, root, "hostile-count")


# --- no job stuck --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reconcile_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "stt_reconcile.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["stt_reconcile"]


def test_mongo_down_while_the_failure_callback_fires_then_the_reconciler_settles_the_job(
        run_transcribe, reconcile_dag, root, jobs, mongo_server, monkeypatch):
    from stt.callbacks import record_run_failure
    from stt.jobs import now

    dag_run = run_transcribe(source=f"file://{root}/inbox/never uploaded.wav", job_id="hostile-stuck")
    assert dag_run.state == "failed"
    # the failure never reached the job: the state it has when MongoDB was down while the callbacks fired
    jobs.update_one({"_id": "hostile-stuck"}, {"$set": {"status": "PROCESSING", "error": None, "updated_at": now() - timedelta(hours=1)}})
    mongo_server.stop()
    try:
        record_run_failure(SimpleNamespace(dag_id="stt_transcribe", run_id=dag_run.run_id, conf={"job_id": "hostile-stuck"}), "lost")
    finally:
        mongo_server.start()
    assert error_code(jobs, "hostile-stuck") == ("PROCESSING", None), "the listener must neither raise nor write with MongoDB down"
    monkeypatch.setenv("STT_RECONCILE_IDLE_S", "0")
    assert reconcile_dag.test().state == "success"
    assert error_code(jobs, "hostile-stuck") == ("FAILED", "RUN_FAILED")


def test_the_reconciler_fails_a_job_whose_run_is_gone_and_keeps_active_ones(reconcile_dag, jobs, monkeypatch):
    from stt.jobs import now

    jobs.insert_one({"_id": "hostile-gone", "status": "PROCESSING", "dag_id": "stt_transcribe", "run_id": "manual__never-existed",
                     "source": "s3://media/inbox/gone.wav", "updated_at": now() - timedelta(hours=1)})
    monkeypatch.setenv("STT_RECONCILE_IDLE_S", "0")
    assert reconcile_dag.test().state == "success"
    assert error_code(jobs, "hostile-gone") == ("FAILED", "RUN_GONE")


def test_indexes_the_queries_need_exist_from_the_start(store, jobs):
    keys = {tuple(k for k, _ in spec["key"]) for spec in jobs.index_information().values()}
    assert {("status", "updated_at"), ("status", "lease_until"), ("run_id",)} <= keys


def test_the_known_check_stays_bounded_however_many_objects_the_inbox_holds(store, jobs):
    asked = []

    class Counting:
        def __init__(self, collection):
            self.collection = collection

        def find(self, query, *args, **kwargs):
            asked.append(len(query["_id"]["$in"]))
            return self.collection.find(query, *args, **kwargs)

    from stt.jobs import JobStore

    ids = [f"bounded-{i:05d}" for i in range(1700)]
    jobs.insert_many([{"_id": i, "status": "COMPLETED"} for i in ids[::7]])
    found = JobStore(Counting(jobs)).existing_ids(ids)
    assert found == set(ids[::7])
    assert len(asked) == 4 and max(asked) <= 500
