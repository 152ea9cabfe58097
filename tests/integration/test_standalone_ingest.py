"""Ingestion and the entry points on a real scheduler (`airflow standalone`: SQLite, LocalExecutor).

Everything goes through the HTTP API with a token, S3 is a real S3 API server (moto), MongoDB is the
wire protocol (nx-27017), transcription is whisper.cpp with tiny.en.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from pydub import AudioSegment

import bad_inputs
from conftest import JFK_MP3, JFK_TEXT, JFK_WAV, normalise
from stt.localstack import AirflowStandalone
from stt.waiting import wait_until

pytestmark = pytest.mark.integration

BUCKET = "ingest"
INBOX = f"s3://{BUCKET}/inbox/"
BAD_INBOX = f"s3://{BUCKET}/bad-inputs/"
EVENTS_INBOX = f"s3://{BUCKET}/events/"


def events_queue(s3_server) -> str:
    """The bucket, an SQS queue, and the bucket notification (ObjectCreated under events/ → the queue)."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local-secret")
    queue_url = sqs.create_queue(QueueName="stt-uploads")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "events/"}]}}}]})
    return queue_url


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, mongo_server, s3_server, whisper_ready):
    """A standalone Airflow whose ingest watches s3://ingest/inbox/ (trigger-only schedule)."""
    home = tmp_path_factory.mktemp("standalone")
    queue_url = events_queue(s3_server)
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"}
    env.update({
        "STT_INBOX_URIS": f"{INBOX},{BAD_INBOX},{EVENTS_INBOX}",
        "STT_EVENTS_SQS_QUEUE": queue_url,
        "STT_EVENTS_POLL_S": "2",
        "STT_MAX_FILE_BYTES": str(bad_inputs.MAX_FILE_BYTES),
        "STT_MAX_DURATION_S": str(bad_inputs.MAX_DURATION_S),
        "STT_INGEST_SCHEDULE": "none",
        "STT_INGEST_MODEL": "tiny.en",
        "STT_INGEST_LANGUAGE": "en",
        "STT_WHISPER_POOL": "whisper",
        "STT_WHISPER_THREADS": "1",
        "STT_SCRATCH_DIR": str(home / "scratch"),
        "AIRFLOW__CORE__PARALLELISM": "6",
    })
    stack = AirflowStandalone(home, env).start()
    try:  # stop the stack even when the set-up below fails
        client = stack.client()
        client.set_pool("whisper", 2, "whisper-cli processes at once")
        for dag_id in ("stt_transcribe", "stt_ingest", "stt_ingest_events"):
            client.wait_for_dag(dag_id)
            client.unpause(dag_id)
        yield stack, client
        client.close()
    finally:
        stack.stop()


def ingest_jobs(jobs, prefix=INBOX):
    return list(jobs.find({"source": {"$regex": f"^{prefix}"}}))


def wait_jobs_done(jobs, count, timeout_s=600, prefix=INBOX):
    def all_ended() -> list[dict] | None:
        docs = ingest_jobs(jobs, prefix)
        return docs if len(docs) >= count and all(d["status"] in ("COMPLETED", "FAILED") for d in docs) else None

    def states() -> str:
        return f"{count} finished jobs under {prefix} (now: {dict((d['_id'], d['status']) for d in ingest_jobs(jobs, prefix))})"

    return wait_until(all_ended, timeout_s=timeout_s, interval_s=2, what=states)


def run_ingest(client, times=1):
    runs = [client.trigger("stt_ingest", {}) for _ in range(times)]
    return [client.wait_for_run("stt_ingest", r["dag_run_id"], timeout_s=180) for r in runs]


def transcript_of(s3, doc):
    key = doc["outputs"]["txt"].removeprefix(f"s3://{BUCKET}/")
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def test_thirty_objects_become_thirty_jobs_exactly_once(airflow, s3_server, jobs):
    stack, client = airflow
    s3 = s3_server.client()
    names = []
    for i in range(30):
        source = JFK_WAV if i % 2 == 0 else JFK_MP3
        name = [f"call {i:02d}.{source.suffix[1:]}", f"lecture é ü {i:02d}{source.suffix}", f"podcasts/ep #{i:02d}{source.suffix}"][i % 3]
        s3.upload_file(str(source), BUCKET, f"inbox/{name}")
        names.append(name)

    started = time.monotonic()
    finished = run_ingest(client, times=2)  # two overlapping ingest runs over the same 30 objects
    assert [r["state"] for r in finished] == ["success", "success"]
    docs = wait_jobs_done(jobs, 30)
    elapsed = time.monotonic() - started

    assert len(docs) == 30
    assert {d["source"] for d in docs} == {f"{INBOX}{n}" for n in names}
    assert {d["source"]: d.get("error") for d in docs if d["status"] != "COMPLETED"} == {}
    for doc in docs:
        assert doc["chunks_completed"] == doc["chunks_total"] >= 1
        assert normalise(transcript_of(s3, doc)) == normalise(JFK_TEXT), doc["source"]
    print(f"30 jobs via two concurrent ingest runs: {elapsed:.1f}s trigger → all COMPLETED")

    run_ingest(client)
    assert len(ingest_jobs(jobs)) == 30, "an unchanged object was claimed twice"

    jfk = AudioSegment.from_wav(JFK_WAV)
    tmp = stack.home / "changed.wav"
    (jfk + jfk).export(tmp, format="wav")
    s3.upload_file(str(tmp), BUCKET, f"inbox/{names[0]}")
    run_ingest(client)
    docs = wait_jobs_done(jobs, 31)
    assert len(docs) == 31
    again = [d for d in docs if d["source"] == f"{INBOX}{names[0]}"]
    assert len(again) == 2 and len({d["etag"] for d in again}) == 2
    newest = max(again, key=lambda d: d["created_at"])
    assert newest["status"] == "COMPLETED"
    assert normalise(transcript_of(s3, newest)) == normalise(JFK_TEXT + " " + JFK_TEXT)


def test_rest_trigger_with_token_and_priority(airflow, s3_server, jobs):
    stack, _ = airflow
    s3_server.client().upload_file(str(JFK_WAV), BUCKET, "rest/jfk.wav")
    token = httpx.post(f"{stack.url}/auth/token", json={"username": "admin", "password": stack.admin_password()}).json()["access_token"]
    api = httpx.Client(base_url=f"{stack.url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    refused = api.post("/dags/stt_transcribe/dagRuns", json={"logical_date": None, "conf": {"source": f"s3://{BUCKET}/rest/jfk.wav", "language": "fr"}})
    assert refused.status_code == 400 and "fr" in refused.text
    too_long = api.post("/dags/stt_transcribe/dagRuns", json={"logical_date": None, "conf": {"source": f"s3://{BUCKET}/rest/jfk.wav", "prompt": "Kennedy " * 70}})
    assert too_long.status_code == 400 and "is too long" in too_long.text, too_long.text[:300]

    created = api.post("/dags/stt_transcribe/dagRuns", json={"logical_date": None, "dag_run_id": "rest-jfk", "conf": {
        "source": f"s3://{BUCKET}/rest/jfk.wav", "language": "en", "model": "tiny.en", "priority": "high", "job_id": "rest-jfk"}})
    assert created.status_code == 200, created.text
    wait_until(lambda: api.get("/dags/stt_transcribe/dagRuns/rest-jfk").json()["state"] in ("success", "failed"), timeout_s=300, interval_s=1,
               what="run rest-jfk to end")
    assert api.get("/dags/stt_transcribe/dagRuns/rest-jfk").json()["state"] == "success"
    doc = jobs.find_one({"_id": "rest-jfk"})
    assert doc["status"] == "COMPLETED"
    tis = api.get("/dags/stt_transcribe/dagRuns/rest-jfk/taskInstances", params={"limit": 100}).json()["task_instances"]
    weights = {ti["task_id"]: ti["priority_weight"] for ti in tis}
    assert weights["transcribe"] > weights["finish"] > weights["prepare"] >= 100 * 1_000_000, \
        f"priority=high must scale every task's priority_weight, transcription first: {weights}"
    assert {ti["pool"] for ti in tis if ti["task_id"] == "transcribe"} == {"whisper"}
    assert "preloaded the task modules in the scheduler" in stack.log_file.read_text(), "plugins/stt_preload.py did not run"


def test_params_form_schema_over_rest(airflow):
    _, client = airflow
    details = client._call("GET", "/dags/stt_transcribe/details")
    params = details["params"]
    assert params["language"]["schema"]["enum"] == ["auto", "en", "vi"]
    assert params["priority"]["schema"]["enum"] == ["high", "normal", "low"]
    assert set(params["formats"]["schema"]["items"]["enum"]) == {"txt", "srt", "vtt", "json"}
    assert {"tiny.en", "base"} <= set(params["model"]["schema"]["examples"])
    assert params["source"]["schema"]["type"] == "string" and params["source"]["description"]


def test_hostile_rest_triggers_are_refused_with_their_reason(airflow, jobs, tmp_path):
    """A path as job id is refused by the trigger schema (HTTP 400 naming job_id) and creates no run; a source
    outside every storage root runs, fails fast with SOURCE_OUTSIDE_ROOT and leaves the file it named alone."""
    stack, client = airflow
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("canary")
    for job_id in (str(canary), "../../etc", "a/b"):
        refused = client._http.post("/api/v2/dags/stt_transcribe/dagRuns", json={
            "logical_date": None, "dag_run_id": "hostile-rest", "conf": {"source": f"s3://{BUCKET}/rest/jfk.wav", "job_id": job_id}})
        assert refused.status_code == 400 and "job_id" in refused.text, (job_id, refused.status_code, refused.text[:300])
    assert client._http.get("/api/v2/dags/stt_transcribe/dagRuns/hostile-rest").status_code == 404
    client.trigger("stt_transcribe", {"source": f"file://{canary}/keep.txt", "job_id": "hostile-rest-outside"}, run_id="hostile-rest-outside")
    assert client.wait_for_run("stt_transcribe", "hostile-rest-outside", timeout_s=120)["state"] == "failed"
    doc = jobs.find_one({"_id": "hostile-rest-outside"})
    assert (doc["status"], doc["error"]["code"]) == ("FAILED", "SOURCE_OUTSIDE_ROOT")
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]


def whisper_processes_of(job_id: str) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "whisper-cli" in cmdline and f"/{job_id}/" in cmdline and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_transcribe_task_failed_from_the_ui_leaves_no_whisper_running(airflow, s3_server, jobs, tmp_path):
    """Marking a running transcribe task failed (as from the UI) makes Airflow's supervisor kill the task process;
    its whisper-cli goes with it, the job is FAILED and its work folder is removed."""
    stack, client = airflow
    s3 = s3_server.client()
    (AudioSegment.from_wav(JFK_WAV) * 9).export(tmp_path / "long.wav", format="wav")
    s3.upload_file(str(tmp_path / "long.wav"), BUCKET, "kill/long.wav")
    client.trigger("stt_transcribe", {"source": f"s3://{BUCKET}/kill/long.wav", "language": "en", "model": "base", "job_id": "hostile-kill"},
                   run_id="hostile-kill")
    wait_until(lambda: whisper_processes_of("hostile-kill"), timeout_s=180, interval_s=0.2, what="whisper-cli to start")
    tis = client._call("GET", "/dags/stt_transcribe/dagRuns/hostile-kill/taskInstances", params={"limit": 100})["task_instances"]
    running = [ti for ti in tis if ti["task_id"] == "transcribe" and ti["state"] == "running"]
    assert running, [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis]
    for ti in running:
        client._call("PATCH", f"/dags/stt_transcribe/dagRuns/hostile-kill/taskInstances/transcribe/{ti['map_index']}", json={"new_state": "failed"})
    wait_until(lambda: not whisper_processes_of("hostile-kill"), timeout_s=60, interval_s=0.5, what="whisper-cli to end with its task")
    assert client.wait_for_run("stt_transcribe", "hostile-kill", timeout_s=180)["state"] == "failed"
    wait_until(lambda: jobs.find_one({"_id": "hostile-kill"})["status"] == "FAILED", timeout_s=60, interval_s=1,
               what=lambda: f"job hostile-kill to be FAILED ({jobs.find_one({'_id': 'hostile-kill'})})")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="work/hostile-kill/")
    assert listed.get("KeyCount", 0) == 0, [o["Key"] for o in listed.get("Contents", [])]


def test_cli_submit_wait_prints_the_transcript(airflow, s3_server, mongo_server, tmp_path):
    stack, _ = airflow
    env = {**os.environ, "STT_AIRFLOW_URL": stack.url, "STT_AIRFLOW_PASSWORD": stack.admin_password(),
           "STT_MONGO_URL": mongo_server.url, "STT_UPLOAD_URI": f"s3://{BUCKET}/cli/", "STT_HOME": str(tmp_path)}
    cli = [sys.executable, "-m", "stt.cli"]
    out = subprocess.run([*cli, "submit", str(JFK_MP3), "--language", "en", "--model", "tiny.en", "--prompt", "Kennedy, inaugural address", "--wait"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    job_at = next(i for i, line in enumerate(lines) if re.fullmatch(r"obj-[0-9a-f]{20}", line))
    job_id = lines[job_at]
    assert normalise(" ".join(lines[job_at + 1:])) == normalise(JFK_TEXT)
    assert "COMPLETED: chunks 1/1" in out.stderr
    shown = subprocess.run([*cli, "status", job_id], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["options"]["prompt"] == "Kennedy, inaugural address"
    rerun = subprocess.run([*cli, "retry", job_id, "--force", "--prompt", "", "--wait"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    redone = json.loads(subprocess.run([*cli, "status", job_id], env=env, capture_output=True, text=True, timeout=60).stdout)
    assert redone["status"] == "COMPLETED" and redone["options"]["prompt"] == "" and len(redone["reruns"]) == 1

    again = subprocess.run([*cli, "submit", f"s3://{BUCKET}/cli/jfk.mp3"], env=env, capture_output=True, text=True, timeout=60)
    assert job_id in again.stdout.splitlines() and "already job" in again.stderr

    srt = subprocess.run([*cli, "result", job_id, "--format", "srt"], env=env, capture_output=True, text=True, timeout=60)
    assert re.match(r"1\n00:00:0\d,\d{3} --> 00:00:\d\d,\d{3}\n", srt.stdout), srt.stdout
    listing = subprocess.run([*cli, "list", "--status", "COMPLETED"], env=env, capture_output=True, text=True, timeout=60)
    assert job_id in listing.stdout
    csv = tmp_path / "stats.csv"
    stats = subprocess.run([*cli, "stats", "--csv", str(csv)], env=env, capture_output=True, text=True, timeout=60)
    assert stats.returncode == 0 and "audio_hours_processed" in stats.stdout and csv.read_text().startswith("jobs_pending")


def run_cli_timed(args, env, stderr_file):
    """Run `stt` and note when each stdout line arrives: ([(seconds since start, line)], exit code, seconds in all)."""
    started = time.monotonic()
    with open(stderr_file, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "stt.cli", *args], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
        code = proc.wait(timeout=600)
    return lines, code, time.monotonic() - started


def test_cli_submits_many_files_in_one_call_and_follows_them_with_one_progress_line(airflow, s3_server, mongo_server, jobs, tmp_path):
    stack, client = airflow
    folder = tmp_path / "recordings"
    folder.mkdir()
    jfk = AudioSegment.from_wav(JFK_WAV)
    (jfk + jfk).export(folder / "twice.wav", format="wav")
    for source in (JFK_WAV, JFK_MP3):
        (folder / source.name).write_bytes(source.read_bytes())
    texts = {"jfk.wav": JFK_TEXT, "jfk.mp3": JFK_TEXT, "twice.wav": JFK_TEXT + " " + JFK_TEXT}
    env = {**os.environ, "STT_AIRFLOW_URL": stack.url, "STT_AIRFLOW_PASSWORD": stack.admin_password(),
           "STT_MONGO_URL": mongo_server.url, "STT_UPLOAD_URI": f"s3://{BUCKET}/bulk/", "STT_HOME": str(tmp_path)}
    options = ["--language", "en", "--model", "tiny.en"]

    lines, code, elapsed = run_cli_timed(["submit", str(folder / "*.wav"), str(folder / "jfk.mp3"), str(folder / "jfk.wav"), *options, "--wait"],
                                         env, tmp_path / "bulk.err")
    stderr = (tmp_path / "bulk.err").read_text()
    assert code == 0, stderr
    job_ids = [line for _, line in lines]
    assert len(job_ids) == 3 and all(re.fullmatch(r"obj-[0-9a-f]{20}", j) for j in job_ids), lines
    docs = {d["source"].removeprefix(f"s3://{BUCKET}/bulk/"): d for d in jobs.find({"_id": {"$in": job_ids}})}
    assert sorted(docs) == sorted(texts)
    assert [docs[name]["_id"] for name in ("jfk.wav", "twice.wav", "jfk.mp3")] == job_ids, "job ids in the order given"
    for name, doc in docs.items():
        assert (doc["status"], doc["origin"]) == ("COMPLETED", "cli"), doc.get("error")
        assert normalise(transcript_of(s3_server.client(), doc)) == normalise(texts[name])
    audio_s = sum(d["duration_s"] for d in docs.values())
    assert re.search(r"\] 3/3 done, 0 failed · 0\.01\d h audio · \d+\.\d\dx real time", stderr), stderr
    assert f"3 jobs: 3 completed, 0 failed, 0 unfinished · {audio_s / 3600:.3f} h audio" in stderr, stderr
    assert all(f"COMPLETED  {j}" in stderr for j in job_ids)

    again = subprocess.run([sys.executable, "-m", "stt.cli", "submit", str(folder / "jfk.mp3"), f"s3://{BUCKET}/bulk/*.wav"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(again.stdout.splitlines()) == sorted(job_ids) and again.stderr.count("already job") == 3

    # Three calls of one file and one call of three, with no transcription competing for the cores: all jobs submitted
    # (their times are printed, not asserted: a shared machine's timings are no test).
    client._call("PATCH", "/dags/stt_transcribe", json={"is_paused": True})
    try:
        singles = [run_cli_timed(["submit", str(folder / name), *options], {**env, "STT_UPLOAD_URI": f"s3://{BUCKET}/single/"},
                                 tmp_path / "single.err") for name in texts]
        bulk, bulk_code, bulk_submit_s = run_cli_timed(["submit", str(folder), *options], {**env, "STT_UPLOAD_URI": f"s3://{BUCKET}/bulk2/"},
                                                       tmp_path / "bulk2.err")
    finally:
        client.unpause("stt_transcribe")
    assert [code for _, code, _ in singles] == [0, 0, 0] and bulk_code == 0 and len(bulk) == 3
    single_submit_s = sum(seconds for _, _, seconds in singles)
    print(f"3 files, one call with --wait: {elapsed:.1f}s ({audio_s:.0f}s audio; job ids after {lines[0][0]:.1f}s, {lines[1][0]:.1f}s, "
          f"{lines[2][0]:.1f}s); submitting 3 files: one call {bulk_submit_s:.1f}s, three calls {single_submit_s:.1f}s "
          f"({', '.join(f'{s:.1f}' for _, _, s in singles)})")
    submitted = [out[0][1] for out, _, _ in singles] + [line for _, line in bulk]
    wait_until(lambda: jobs.count_documents({"_id": {"$in": submitted}, "status": "COMPLETED"}) >= len(submitted), timeout_s=300, interval_s=2,
               what="the jobs triggered while the DAG was paused to complete after unpausing")


def test_bad_inputs_fail_fast_with_their_reason_beside_good_jobs(airflow, s3_server, jobs, tmp_path):
    """Bad files dropped in an inbox together with good ones: each bad one FAILED with its code and no retry,
    the good and the tricky-but-valid ones COMPLETED with the right transcript."""
    stack, client = airflow
    s3 = s3_server.client()
    expected = bad_inputs.make_corpus(tmp_path / "corpus")
    for name in expected:
        s3.upload_file(str(tmp_path / "corpus" / name), BUCKET, f"bad-inputs/{name}")
    run_ingest(client)
    s3.upload_file(str(JFK_WAV), BUCKET, "params/jfk.wav")
    by_rest = {  # sources outside the bad-inputs inbox, so the ingest does not see them
        "bad-escape": ({"source": f"s3://{BUCKET}/params/../../etc/passwd"}, "INVALID_SOURCE"),
        "bad-model": ({"source": f"s3://{BUCKET}/params/jfk.wav", "model": "large-v9"}, "MODEL_NOT_FOUND"),
        "bad-missing": ({"source": f"s3://{BUCKET}/params/never uploaded.wav"}, "SOURCE_NOT_FOUND"),
    }
    for job_id, (conf, _) in by_rest.items():
        client.trigger("stt_transcribe", {"language": "en", "model": "tiny.en", **conf, "job_id": job_id}, run_id=job_id)

    docs = {d["source"].removeprefix(BAD_INBOX): d for d in wait_jobs_done(jobs, len(expected), prefix=BAD_INBOX)}
    for job_id in by_rest:
        client.wait_for_run("stt_transcribe", job_id, timeout_s=120)
    outcomes = {}
    for name, (status, check) in expected.items():
        doc = docs[name]
        outcomes[name] = (doc["status"], (doc.get("error") or {}).get("code"))
        if status == "FAILED":
            assert outcomes[name] == ("FAILED", check), (name, doc.get("error"))
            # the step inside the prepare task: only a decode shorter than the header said is found by chunk
            assert doc["error"]["step"] == ("chunk" if check == "TRUNCATED_AUDIO" else "validate"), (name, doc["error"])
        else:
            assert doc["status"] == "COMPLETED", (name, doc.get("error"))
            text = normalise(transcript_of(s3, doc))
            assert text == ("" if check == "empty" else normalise(JFK_TEXT)), (name, text)
        assert doc.get("retry_count", 0) == 0, (name, doc.get("retries"))
    for job_id, (_, code) in by_rest.items():
        doc = jobs.find_one({"_id": job_id})
        outcomes[job_id] = (doc["status"], doc["error"]["code"])
        assert outcomes[job_id] == ("FAILED", code), doc.get("error")
        assert doc.get("retry_count", 0) == 0
    for doc in [*docs.values(), *(jobs.find_one({"_id": j}) for j in by_rest)]:
        tis = client._call("GET", f"/dags/stt_transcribe/dagRuns/{doc['run_id']}/taskInstances", params={"limit": 100})["task_instances"]
        assert max(ti["try_number"] for ti in tis) == 1, f"{doc['source']}: a retry was spent"
    print("\n".join(f"{name:40s} {status:10s} {code or ''}" for name, (status, code) in outcomes.items()))


def test_event_driven_path_and_schedule_together_give_one_job_per_object(airflow, s3_server, jobs):
    """S3 notification → SQS → AssetWatcher → stt_ingest_events → jobs; the scheduled listing then claims nothing."""
    _, client = airflow
    s3 = s3_server.client()
    names = ["event one.wav", "event ü two.mp3", "nested/event three.wav"]
    for name in names:
        s3.upload_file(str(JFK_MP3 if name.endswith(".mp3") else JFK_WAV), BUCKET, f"events/{name}")

    docs = wait_jobs_done(jobs, len(names), timeout_s=300, prefix=EVENTS_INBOX)
    assert sorted(d["source"] for d in docs) == sorted(f"{EVENTS_INBOX}{n}" for n in names)
    assert {d["origin"] for d in docs} == {"event"}
    assert all(d["status"] == "COMPLETED" for d in docs), [d.get("error") for d in docs]
    for doc in docs:
        assert normalise(transcript_of(s3, doc)) == normalise(JFK_TEXT)

    run_ingest(client)
    assert len(ingest_jobs(jobs, EVENTS_INBOX)) == len(names), "the schedule claimed an object the events already had"


def test_api_server_gives_up_on_a_held_sqlite_lock_after_seconds_not_half_a_minute(airflow):
    """The API server's SQLite lock timeout is 3 s (stt.airflow_settings): an audited REST call (unpause) made while
    another connection holds the write lock answers HTTP 500 after a few seconds instead of waiting for the lock,
    as a REST call caught in the audit-log deadlock does; once the lock is free the call goes through."""
    import sqlite3

    stack, client = airflow
    holder = sqlite3.connect(stack.home / "airflow.db", timeout=30, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the ROLLBACK below
        started = time.monotonic()
        held = client._http.request("PATCH", "/api/v2/dags/stt_transcribe", json={"is_paused": False}, timeout=60)
        waited = time.monotonic() - started
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert held.status_code == 500 and waited < 10, (held.status_code, round(waited, 1), held.text[:300])
    assert client.unpause("stt_transcribe")["is_paused"] is False
