"""`stt`: submit recordings and follow jobs from a terminal (Airflow REST API for runs, MongoDB for job state).

    stt submit FILE|URI [--language auto|en|vi] [--model base] [--priority normal] [--wait]
    stt status JOB          stt result JOB [--format txt|srt|vtt|json]
    stt list [--status FAILED] [--limit 20]       stt stats [--csv FILE]       stt retry JOB      stt health

Configuration (environment; defaults come from the local stack started by scripts/run-local.sh):
    STT_AIRFLOW_URL, STT_AIRFLOW_USER, STT_AIRFLOW_PASSWORD   the Airflow API server and a user
    STT_MONGO_URL, STT_MONGO_DB                               the job store
    STT_UPLOAD_URI                                            where `submit FILE` uploads (s3://bucket/inbox/ or file:///…/inbox/)
    AIRFLOW_CONN_STT_S3                                       S3/MinIO credentials when uploads or results are on s3://
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stt.config import LANGUAGES, Settings
from stt.errors import InvalidSource
from stt.formats import FORMATS
from stt.jobs import COMPLETED, FAILED, STATUSES, JobStore
from stt.log import mask_secrets

TERMINAL = (COMPLETED, FAILED)
_results = sys.stdout  # results go here; everything else (progress, library logs) goes to stderr


def emit(*args, **kwargs) -> None:
    print(*args, file=_results, **kwargs)


@dataclass
class CliConfig:
    airflow_url: str
    user: str
    password: str
    mongo_url: str
    mongo_db: str
    upload_uri: str

    @classmethod
    def load(cls) -> "CliConfig":
        from stt import devstack

        env = os.environ
        stack = devstack.load_state()
        password = env.get("STT_AIRFLOW_PASSWORD", "")
        if not password and stack:
            try:
                password = devstack.admin_password()
            except (OSError, KeyError, ValueError):
                password = ""
        mongo_port = stack.get("mongo_port", 27017)
        storage_root = stack.get("storage_root")
        return cls(
            airflow_url=env.get("STT_AIRFLOW_URL") or stack.get("airflow_url") or "http://127.0.0.1:8080",
            user=env.get("STT_AIRFLOW_USER", "admin"),
            password=password,
            mongo_url=env.get("STT_MONGO_URL") or f"mongodb://127.0.0.1:{mongo_port}",
            mongo_db=env.get("STT_MONGO_DB", "stt"),
            upload_uri=env.get("STT_UPLOAD_URI") or (f"file://{storage_root}/inbox/" if storage_root else ""),
        )

    def store(self) -> JobStore:
        import pymongo

        client = pymongo.MongoClient(self.mongo_url, serverSelectionTimeoutMS=5000)
        return JobStore(client[self.mongo_db][Settings.from_env().jobs_collection])

    def airflow(self):
        from stt.client import AirflowClient

        return AirflowClient(self.airflow_url, self.user, self.password)


def _source_for(target: str, cfg: CliConfig, settings: Settings) -> str:
    """A URI as given, or a local file uploaded to the upload location."""
    from stt import storage

    if "://" in target:
        return target
    path = Path(target)
    if not path.is_file():
        raise SystemExit(f"stt: {target}: no such file (give a local file or an s3:// / file:// URI)")
    if not cfg.upload_uri:
        raise SystemExit("stt: set STT_UPLOAD_URI (e.g. s3://bucket/inbox/) to upload local files")
    uri = cfg.upload_uri.rstrip("/") + "/" + path.name
    storage.upload(path, uri, settings)
    print(f"uploaded {path} → {uri}", file=sys.stderr)
    return uri


def submit(args, cfg: CliConfig) -> int:
    from stt import storage
    from stt.ingest import claim_objects, job_id_for_object

    settings = Settings.from_env()
    source = _source_for(args.target, cfg, settings)
    try:
        storage.locate(source, settings)
    except InvalidSource as exc:
        raise SystemExit(f"stt: [{exc.code}] {exc}") from None
    store = cfg.store()
    obj = storage.object_info(source, settings)
    conf = {"language": args.language, "model": args.model, "priority": args.priority, "formats": args.formats or list(FORMATS)}
    requests = claim_objects([obj], store=store, origin="cli", claimed_by="cli", conf=conf, limit=1, lease_s=900, settings=settings)
    job_id = job_id_for_object(obj)
    if not requests:
        print(f"{source} (this content) is already job {job_id}: {store.get(job_id).get('status')}", file=sys.stderr)
    else:
        request = requests[0]
        run = cfg.airflow().trigger("stt_transcribe", request["conf"], run_id=request["trigger_run_id"])
        print(f"job {job_id} submitted (run {run['dag_run_id']})", file=sys.stderr)
    emit(job_id)
    return follow(job_id, store, settings) if args.wait else 0


def follow(job_id: str, store: JobStore, settings: Settings, timeout_s: float = 3600) -> int:
    """Print progress until the job ends, then the transcript (or the error)."""
    from stt import storage

    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        doc = store.get(job_id) or {}
        line = f"{doc.get('status', 'PENDING')}: chunks {doc.get('chunks_completed', 0)}/{doc.get('chunks_total', '?')}"
        if line != last:
            print(line, file=sys.stderr)
            last = line
        if doc.get("status") in TERMINAL:
            if doc["status"] == FAILED:
                err = doc.get("error") or {}
                print(f"FAILED [{err.get('code')}] {err.get('message')}", file=sys.stderr)
                return 1
            emit(storage.read_text(doc["outputs"]["txt"], settings), end="")
            return 0
        time.sleep(1)
    print(f"stt: job {job_id} still running after {timeout_s:.0f}s", file=sys.stderr)
    return 2


def status(args, cfg: CliConfig) -> int:
    doc = cfg.store().get(args.job)
    if not doc:
        print(f"stt: no job {args.job}", file=sys.stderr)
        return 1
    doc.pop("events", None)
    doc.pop("chunks", None) if not args.chunks else None
    emit(json.dumps(doc, indent=2, default=str))
    return 0


def result(args, cfg: CliConfig) -> int:
    from stt import storage

    doc = cfg.store().get(args.job) or {}
    uri = (doc.get("outputs") or {}).get(args.format)
    if doc.get("status") != COMPLETED or not uri:
        print(f"stt: job {args.job} has no {args.format} result (status {doc.get('status', 'unknown')})", file=sys.stderr)
        return 1
    emit(storage.read_text(uri, Settings.from_env()), end="")
    return 0


def jobs_frame(store: JobStore, status_filter: str | None = None, limit: int = 0):
    """Jobs as a pandas DataFrame (one row per job, the fields worth a table)."""
    import pandas as pd

    query = {"status": status_filter} if status_filter else {}
    fields = {"status": 1, "source": 1, "model": 1, "language": 1, "duration_s": 1, "chunks_total": 1, "chunks_completed": 1,
              "retry_count": 1, "timings": 1, "error": 1, "created_at": 1, "finished_at": 1}
    cursor = store.collection.find(query, fields).sort("created_at", -1)
    rows = []
    for doc in cursor.limit(limit) if limit else cursor:
        rows.append({
            "job_id": doc["_id"], "status": doc.get("status"), "source": doc.get("source"), "model": doc.get("model"),
            "language": doc.get("language"), "audio_s": doc.get("duration_s"),
            "chunks": f"{doc.get('chunks_completed', 0)}/{doc.get('chunks_total', '?')}", "retries": doc.get("retry_count", 0),
            "wall_s": (doc.get("timings") or {}).get("total_s"), "error": (doc.get("error") or {}).get("code"),
            "created_at": doc.get("created_at"),
        })
    return pd.DataFrame(rows, columns=["job_id", "status", "source", "model", "language", "audio_s", "chunks", "retries", "wall_s", "error", "created_at"])


def list_jobs(args, cfg: CliConfig) -> int:
    frame = jobs_frame(cfg.store(), args.status, args.limit)
    if frame.empty:
        emit("no jobs")
        return 0
    emit(frame.drop(columns=["created_at"]).to_string(index=False, max_colwidth=60))
    return 0


def stats_frame(frame) -> "object":
    """Jobs by status, audio hours processed, real-time factor and backlog."""
    import pandas as pd

    done = frame[frame["status"] == COMPLETED]
    audio_s = float(done["audio_s"].fillna(0).sum())
    wall_s = float(done["wall_s"].fillna(0).sum())
    summary = {f"jobs_{s.lower()}": int((frame["status"] == s).sum()) for s in STATUSES}
    summary.update({
        "jobs_total": int(len(frame)),
        "audio_hours_processed": round(audio_s / 3600, 4),
        "real_time_factor": round(wall_s / audio_s, 3) if audio_s else None,
        "speed_x_real_time": round(audio_s / wall_s, 2) if wall_s else None,
        "backlog": summary["jobs_pending"] + summary["jobs_processing"],
        "retries_total": int(frame["retries"].fillna(0).sum()) if len(frame) else 0,
    })
    return pd.DataFrame([summary])


def stats(args, cfg: CliConfig) -> int:
    table = stats_frame(jobs_frame(cfg.store()))
    emit(table.T.to_string(header=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"written {args.csv}", file=sys.stderr)
    return 0


def retry(args, cfg: CliConfig) -> int:
    """Start a new run of a FAILED job with its original parameters; the job keeps its history."""
    store = cfg.store()
    doc = store.get(args.job)
    if not doc:
        print(f"stt: no job {args.job}", file=sys.stderr)
        return 1
    if doc.get("status") != FAILED and not args.force:
        print(f"stt: job {args.job} is {doc.get('status')}, not FAILED (use --force to re-run anyway)", file=sys.stderr)
        return 1
    conf = {**(doc.get("conf") or {"source": doc["source"], "language": doc.get("language_requested", "auto"), "model": doc.get("model")}), "job_id": args.job}
    attempt = len(doc.get("reruns") or []) + 2
    run_id = f"stt__{args.job}__run{attempt}"
    store.request_rerun(args.job, conf=conf, run_id=run_id)
    run = cfg.airflow().trigger("stt_transcribe", {k: v for k, v in conf.items() if v is not None}, run_id=run_id)
    print(f"job {args.job} re-run as {run['dag_run_id']}", file=sys.stderr)
    return follow(args.job, store, Settings.from_env()) if args.wait else 0


def health(args, cfg: CliConfig) -> int:
    """Check whisper-cli, the models, MongoDB and storage; exit 1 when anything is broken."""
    from stt.health import run_checks

    storage_uris = tuple(args.storage or ([cfg.upload_uri] if cfg.upload_uri else []))
    checks = run_checks(Settings.from_env(), collection=cfg.store().collection, storage_uris=storage_uris)
    for check in checks:
        emit(f"{'ok' if check.ok else 'FAIL':4s}  {check.name:16s} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="upload (if a local file) and transcribe")
    p.add_argument("target", help="local file, s3://bucket/key or file:///path")
    p.add_argument("--language", default="auto", choices=LANGUAGES)
    p.add_argument("--model", default=os.environ.get("STT_DEFAULT_MODEL", "base"))
    p.add_argument("--priority", default="normal", choices=("high", "normal", "low"))
    p.add_argument("--formats", nargs="+", choices=FORMATS)
    p.add_argument("--wait", action="store_true", help="follow progress and print the transcript")
    p.set_defaults(func=submit)
    p = sub.add_parser("status", help="a job's document")
    p.add_argument("job")
    p.add_argument("--chunks", action="store_true", help="include per-chunk detail")
    p.set_defaults(func=status)
    p = sub.add_parser("result", help="print a job's transcript")
    p.add_argument("job")
    p.add_argument("--format", default="txt", choices=FORMATS)
    p.set_defaults(func=result)
    p = sub.add_parser("list", help="recent jobs")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=list_jobs)
    p = sub.add_parser("stats", help="jobs by status, audio hours, real-time factor, backlog")
    p.add_argument("--csv", help="also write the summary as CSV")
    p.set_defaults(func=stats)
    p = sub.add_parser("retry", help="re-run a FAILED job")
    p.add_argument("job")
    p.add_argument("--force", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func=retry)
    p = sub.add_parser("health", help="check whisper-cli, models, MongoDB and storage")
    p.add_argument("--storage", nargs="*", help="storage URIs to check (default: the upload location)")
    p.set_defaults(func=health)
    return parser


def main(argv: list[str] | None = None) -> int:
    global _results
    args = build_parser().parse_args(argv)
    cfg = CliConfig.load()
    _results = sys.stdout
    # Airflow's libraries log to stdout when first imported; keep stdout for results only.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            return args.func(args, cfg)
        except RuntimeError as exc:  # HTTP errors from the Airflow API, with their reason
            print(f"stt: {mask_secrets(str(exc))}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
