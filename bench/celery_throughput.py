"""Throughput of stt_transcribe on the CeleryExecutor with 1 and with 2 workers, on the same batch, in one run.

    .venv/bin/python -m bench.celery_throughput [--jobs 6] [--repeats 4] [--model tiny.en] [--json]

Starts the Celery deployment of tests/integration (PostgreSQL and Redis of this machine, a moto S3
server, nx-27017), runs one warm-up job, then the batch with one worker, then starts a second worker
and runs the same batch again. Each job is jfk.wav (with 0.75 s of silence around it) repeated
`--repeats` times, with the chunk length set to one such period, so a job maps several transcribe tasks.
The machine's load average is recorded with each phase: other work on the machine skews the figures.
The stack runs a copy of the code taken at the start, so the working tree may change meanwhile.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stt.localstack import MongoServer, S3Server, mongo_conn_uri, s3_conn_uri
from tests.integration.conftest import JFK_WAV, REPO, CeleryStack, padded_jfk

BUCKET = "bench"


def snapshot_code(dest: Path, attempts: int = 10) -> Path:
    """Copy dags/, include/, plugins/ and airflow.cfg, so edits to the working tree during the run change nothing;
    retried until the copy imports cleanly (a file saved half-way through an edit elsewhere does not)."""
    for _ in range(attempts):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in ("dags", "include", "plugins"):
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copy2(REPO / "airflow.cfg", dest / "airflow.cfg")
        check = subprocess.run([sys.executable, "-c", "import importlib, pkgutil, stt; "
                                "[importlib.import_module('stt.' + m.name) for m in pkgutil.iter_modules(stt.__path__)]"],
                               env={**os.environ, "PYTHONPATH": str(dest / "include")}, capture_output=True, text=True)
        if check.returncode == 0:
            return dest
        time.sleep(3)
    raise RuntimeError(f"the code does not import cleanly: {check.stderr[-2000:]}")


def phase(stack: CeleryStack, jobs_collection, label: str, sources: list[str], model: str) -> dict:
    """Run the batch once; wall clock from the first trigger to the last run's end."""
    confs = [{"source": src, "language": "en", "model": model, "job_id": f"{label}-{i}"} for i, src in enumerate(sources)]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    runs = stack.run_batch(confs, timeout_s=1800)
    wall_s = time.monotonic() - started
    load_after = os.getloadavg()[0]
    docs = [jobs_collection.find_one({"_id": conf["job_id"]}) for conf in confs]
    failed = [job_id for job_id, run in runs.items() if run["state"] != "success"]
    if failed:
        raise RuntimeError(f"{label}: runs failed: {failed}")
    chunks_by_worker: dict[str, int] = {}
    for doc in docs:
        for chunk in doc["chunks"].values():
            chunks_by_worker[chunk["worker"]] = chunks_by_worker.get(chunk["worker"], 0) + 1
    audio_s = sum(doc["duration_s"] for doc in docs)
    whisper_s = sum(chunk.get("whisper_s", 0.0) for doc in docs for chunk in doc["chunks"].values())
    return {
        "jobs": len(docs),
        "chunks": sum(chunks_by_worker.values()),
        "audio_s": round(audio_s, 1),
        "wall_s": round(wall_s, 1),
        "jobs_per_min": round(60 * len(docs) / wall_s, 2),
        "audio_s_per_wall_s": round(audio_s / wall_s, 2),
        "whisper_s_total": round(whisper_s, 1),
        "chunks_by_worker": chunks_by_worker,
        "load_avg_1m_before_after": [round(load_before, 1), round(load_after, 1)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.celery_throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=6, help="recordings in the batch (default 6)")
    parser.add_argument("--repeats", type=int, default=4, help="jfk.wav repeated this often per recording (default 4)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--whisper-threads", type=int, default=2, help="threads per whisper-cli on the workers (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="stt-bench-celery-"))
    period = padded_jfk()
    recording = root / "jfk-x.wav"
    (period * args.repeats).export(recording, format="wav")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with MongoServer(root / "mongo") as mongo, S3Server() as s3_server:
        os.environ["AIRFLOW_CONN_STT_MONGO"] = mongo_conn_uri(mongo.port)
        os.environ["AIRFLOW_CONN_STT_S3"] = s3_conn_uri(s3_server.endpoint_url)
        s3 = s3_server.client()
        s3.create_bucket(Bucket=BUCKET)
        sources = []
        for i in range(args.jobs):
            s3.upload_file(str(recording), BUCKET, f"inbox/rec-{i}.wav")
            sources.append(f"s3://{BUCKET}/inbox/rec-{i}.wav")
        s3.upload_file(str(JFK_WAV), BUCKET, "inbox/warmup.wav")

        import pymongo

        jobs_collection = pymongo.MongoClient(mongo.url)["stt"]["jobs"]
        stack = CeleryStack(root / "stack", redis_db=8, parallelism=8, code_root=snapshot_code(root / "code"), worker_env={
            "STT_CHUNK_SECONDS": str(len(period) / 1000), "STT_WHISPER_THREADS": str(args.whisper_threads)})
        try:
            stack.start(worker_ids=["worker-1"])
            phase(stack, jobs_collection, "warmup", [f"s3://{BUCKET}/inbox/warmup.wav"], args.model)
            one = phase(stack, jobs_collection, "one-worker", sources, args.model)
            stack.start_worker("worker-2")
            two = phase(stack, jobs_collection, "two-workers", sources, args.model)
        finally:
            stack.stop()

    result = {
        "cpus": os.cpu_count(),
        "model": args.model,
        "whisper_threads": args.whisper_threads,
        "worker_concurrency": 1,
        "batch": f"{args.jobs} recordings of {len(period) * args.repeats / 1000:.1f} s (jfk.wav ×{args.repeats})",
        "one_worker": one,
        "two_workers": two,
        "speedup": round(one["wall_s"] / two["wall_s"], 2),
        "logs": str(root / "stack" / "logs"),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"batch: {result['batch']}, model {args.model}, {args.whisper_threads} whisper threads, {result['cpus']} CPUs")
        for name in ("one_worker", "two_workers"):
            r = result[name]
            print(f"{name:12s} {r['wall_s']:7.1f} s wall  {r['jobs_per_min']:6.2f} jobs/min  "
                  f"{r['audio_s_per_wall_s']:6.2f} audio-s/wall-s  chunks by worker {r['chunks_by_worker']}  "
                  f"load avg {r['load_avg_1m_before_after']}")
        print(f"speedup 2 vs 1 worker: {result['speedup']}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
