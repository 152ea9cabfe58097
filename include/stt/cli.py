"""`stt`: submit recordings and follow jobs from a terminal (Airflow REST API for runs, MongoDB for job state).

    stt submit FILE|FOLDER|GLOB|URI ... [--language auto|en|vi] [--model MODEL] [--priority normal] [--wait]
    stt status JOB          stt result JOB [--format txt|srt|vtt|json]
    stt list [--status FAILED] [--limit 20]       stt stats [--csv FILE]       stt retry JOB      stt health

Configuration (environment, read by stt.config.CliSettings; defaults come from the local stack started by scripts/run-local.sh):
    STT_AIRFLOW_URL, STT_AIRFLOW_USER, STT_AIRFLOW_PASSWORD   the Airflow API server and a user
    STT_MONGO_URL, STT_MONGO_DB                               the job store
    STT_UPLOAD_URI                                            where `submit` uploads local files (s3://bucket/inbox/ or file:///…/inbox/)
    AIRFLOW_CONN_STT_S3                                       S3/MinIO credentials when uploads or results are on s3://
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import glob
import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from stt.config import LANGUAGES, CliSettings, Settings
from stt.errors import InvalidSource
from stt.formats import FORMATS
from stt.ingest import TRANSCRIBE_DAG_ID
from stt.jobs import COMPLETED, FAILED, STATUSES, JobStore
from stt.log import mask_secrets
from stt.waiting import poll_until

TERMINAL = (COMPLETED, FAILED)
_results = sys.stdout  # results go here; everything else (progress, library logs) goes to stderr


def emit(*args, **kwargs) -> None:
    print(*args, file=_results, **kwargs)


@dataclass
class CliConfig:
    """Where the CLI finds Airflow, the job store and the upload folder, and the pipeline's settings it works with."""

    airflow_url: str
    user: str
    password: str
    mongo_url: str
    upload_uri: str
    settings: Settings

    @classmethod
    def load(cls) -> "CliConfig":
        """CliSettings, with what is not set there taken from the local stack when one was started."""
        from stt import stack_state

        cli = CliSettings()
        settings = Settings.from_env()
        stack = stack_state.load_state()
        password = cli.airflow_password
        if not password and stack:
            try:
                password = stack_state.admin_password()
            except (OSError, KeyError, ValueError):
                password = ""
        mongo_port = stack.get("mongo_port", 27017)
        storage_root = stack.get("storage_root")
        if storage_root and not settings.storage.local_root:  # file:// sources are confined to the stack's storage root, as its tasks are
            settings = settings.updated(storage={"local_root": Path(storage_root).resolve()})
        return cls(
            airflow_url=cli.airflow_url or stack.get("airflow_url") or "http://127.0.0.1:8080",
            user=cli.airflow_user,
            password=password,
            mongo_url=cli.mongo_url or f"mongodb://127.0.0.1:{mongo_port}",
            upload_uri=cli.upload_uri or (f"file://{storage_root}/{settings.storage.inbox_prefix}/" if storage_root else ""),
            settings=settings,
        )

    def store(self) -> JobStore:
        import pymongo

        client = pymongo.MongoClient(self.mongo_url, serverSelectionTimeoutMS=5000)
        return JobStore(client[self.settings.storage.mongo_db][self.settings.storage.jobs_collection])

    def airflow(self):
        from stt.client import AirflowClient

        return AirflowClient(self.airflow_url, self.user, self.password)


MEDIA_EXTENSIONS = frozenset({
    ".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff", ".amr", ".au", ".caf", ".wv",
    ".ac3", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".3gp", ".flv",
})
GLOB_CHARS = frozenset("*?[")
UPLOAD_THREADS = 4
CLAIM_LEASE_S = 900


@dataclass(frozen=True)
class Target:
    """One recording to submit: an object URI, or a local file (`local`) and the name it is uploaded under."""

    uri: str = ""
    local: Path | None = None
    upload_name: str = ""

    @property
    def label(self) -> str:
        return str(self.local) if self.local else self.uri


def is_media(path: Path | str) -> bool:
    return PurePosixPath(str(path)).suffix.lower() in MEDIA_EXTENSIONS


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def media_in_folder(folder: Path) -> list[tuple[Path, str]]:
    """A folder's media files (recursively, hidden ones left out), each with its upload name `<folder>/<relative path>`."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and is_media(path) and not _hidden(relative):
            found.append((path, f"{folder.resolve().name}/{relative.as_posix()}"))
    return found


def expand_local(arg: str) -> list[tuple[Path, str]]:
    """A local file, folder or glob (expanded here when the shell did not) → (file, upload name) pairs; [] when nothing matches."""
    path = Path(arg).expanduser()
    if path.is_file():
        return [(path, path.name)]
    if path.is_dir():
        return media_in_folder(path)
    if not GLOB_CHARS & set(arg):
        return []
    found = []
    for match in sorted(glob.glob(str(path), recursive=True)):
        match_path = Path(match)
        found += media_in_folder(match_path) if match_path.is_dir() else [(match_path, match_path.name)]
    return found


def expand_uri(arg: str, settings: Settings) -> list[str]:
    """An object URI as given; a URI ending in `/` → the media objects under it; a URI glob → the objects it matches."""
    from stt import storage

    listable = arg.partition("://")[0].lower() in storage.SUPPORTED_SCHEMES
    if not listable or (not arg.endswith("/") and not GLOB_CHARS & set(arg)):
        return [arg]  # submit() refuses what is not a supported object URI, with the reason
    first_glob = min((arg.index(c) for c in GLOB_CHARS if c in arg), default=len(arg))
    prefix = arg[: arg.rfind("/", 0, first_glob) + 1]
    uris = [obj.uri for obj in storage.list_objects(prefix, settings)]
    if arg.endswith("/") and first_glob == len(arg):
        return [uri for uri in uris if is_media(uri) and not _hidden(Path(uri[len(prefix):]))]
    return [uri for uri in uris if fnmatch.fnmatchcase(uri, arg)]


def expand_targets(args: list[str], settings: Settings) -> tuple[list[Target], list[str]]:
    """Every file, folder, glob and URI given → the recordings to submit, each once (in the order given),
    and the problems found (an argument matching nothing, two files that would upload under one name)."""
    targets, problems, seen = [], [], set()
    by_upload_name: dict[str, Path] = {}
    for arg in args:
        if "://" in arg:
            found = [Target(uri=uri) for uri in expand_uri(arg, settings)]
        else:
            found = [Target(local=path, upload_name=name) for path, name in expand_local(arg)]
        if not found:
            problems.append(f"{arg}: no such file or folder, or nothing matches (give local files, folders, globs or s3:// / file:// URIs)")
        for target in found:
            key = target.local.resolve() if target.local else target.uri
            if key in seen:
                continue
            seen.add(key)
            if target.local:
                first = by_upload_name.setdefault(target.upload_name, target.local)
                if first != target.local:
                    problems.append(f"{target.local}: would upload under the same name as {first} ({target.upload_name}); submit it separately")
                    continue
            targets.append(target)
    return targets, problems


@dataclass
class Submission:
    """What became of one target: `state` is submitted, existing (this content is a job already) or refused."""

    target: Target
    state: str
    job_id: str = ""
    message: str = ""


class Submitter:
    """Uploads, claims and triggers targets with one job store and one Airflow API client (and token) for all."""

    def __init__(self, cfg: CliConfig, settings: Settings, store: JobStore, conf: dict):
        self.cfg, self.settings, self.store, self.conf = cfg, settings, store, conf
        self._airflow = None
        self._airflow_lock = threading.Lock()

    def airflow(self):
        with self._airflow_lock:
            if self._airflow is None:
                self._airflow = self.cfg.airflow()
            return self._airflow

    def close(self) -> None:
        if self._airflow is not None:
            self._airflow.close()

    def source_of(self, target: Target) -> str:
        if not target.local:
            return target.uri
        if not self.cfg.upload_uri:
            raise InvalidSource("set STT_UPLOAD_URI (e.g. s3://bucket/inbox/) to upload local files")
        return self.cfg.upload_uri.rstrip("/") + "/" + target.upload_name

    def submit(self, target: Target) -> Submission:
        """Refused with its reason, or claimed through `claim_objects` (the same claim as ingestion) and triggered."""
        from stt import storage
        from stt.ingest import claim_objects, job_id_for_object

        try:
            source = self.source_of(target)
            location = storage.locate(source, self.settings)
            if location.in_pipeline_area(self.settings):
                raise InvalidSource(f"source {source!r} is one of the pipeline's own files (under {self.settings.storage.work_prefix}/ or {self.settings.storage.output_prefix}/)")
            if target.local:
                storage.upload(target.local, location.uri, self.settings)
                print(f"uploaded {target.local} → {location.uri}", file=sys.stderr)
            obj = storage.object_info(location.uri, self.settings)
        except InvalidSource as exc:
            return Submission(target, "refused", message=f"[{exc.code}] {exc}")
        except FileNotFoundError:
            return Submission(target, "refused", message=f"[SOURCE_NOT_FOUND] no such file or object: {target.label}")
        except OSError as exc:  # one unreadable file or failed upload does not stop the others
            return Submission(target, "refused", message=f"[UPLOAD_FAILED] {mask_secrets(str(exc))}")
        job_id = job_id_for_object(obj)
        requests = claim_objects([obj], store=self.store, origin="cli", claimed_by="cli", conf=self.conf, limit=1, lease_s=CLAIM_LEASE_S,
                                 settings=self.settings)
        if not requests:
            status_now = (self.store.get(job_id) or {}).get("status")
            return Submission(target, "existing", job_id, f"{obj.uri} (this content) is already job {job_id}: {status_now}")
        request = requests[0]
        try:
            run = self.airflow().trigger(TRANSCRIBE_DAG_ID, request["conf"], run_id=request["trigger_run_id"])
        except (RuntimeError, httpx.HTTPError) as exc:  # the claim stays PENDING: ingestion re-offers it when its lease ends
            return Submission(target, "refused", job_id, f"claimed as job {job_id} but not started: {mask_secrets(str(exc))}")
        return Submission(target, "submitted", job_id, f"job {job_id} submitted (run {run['dag_run_id']}): {obj.uri}")


def submit(args, cfg: CliConfig) -> int:
    """Submit every target in one process; print each job id on stdout as it is submitted, then follow them with --wait."""
    started = time.monotonic()
    settings = cfg.settings
    targets, problems = expand_targets(args.targets, settings)
    for problem in problems:
        print(f"stt: {problem}", file=sys.stderr)
    if not targets:
        return 1
    conf = {"language": args.language or settings.whisper.default_language(), "model": args.model or settings.whisper.default_model, "priority": args.priority,
            "formats": args.formats or list(FORMATS), **({"prompt": args.prompt} if args.prompt else {})}
    store = cfg.store()
    submitter = Submitter(cfg, settings, store, conf)
    job_ids, refused = [], len(problems)
    try:
        with ThreadPoolExecutor(max_workers=min(UPLOAD_THREADS, len(targets))) as pool:
            for done in pool.map(submitter.submit, targets):  # in the order given, each as soon as it and those before it are in
                if done.state == "refused":
                    refused += 1
                    print(f"stt: {done.target.label}: {done.message}", file=sys.stderr)
                    continue
                print(done.message, file=sys.stderr)
                if done.job_id not in job_ids:
                    job_ids.append(done.job_id)
                    emit(done.job_id, flush=True)
    finally:
        submitter.close()
    if not args.wait or not job_ids:
        return 1 if refused else 0
    if len(targets) == 1:
        return follow(job_ids[0], store, settings, timeout_s=args.timeout)
    outcome = follow_all(job_ids, store, started=started, timeout_s=args.timeout)
    return outcome or (1 if refused else 0)


def published_output(doc: dict, fmt: str | None = None) -> tuple[str | None, str | None]:
    """(format, URI) of a job's result: `fmt` if asked, else txt, else the first format published."""
    outputs = {k: v for k, v in (doc.get("outputs") or {}).items() if v}
    if fmt:
        return fmt, outputs.get(fmt)
    chosen = "txt" if "txt" in outputs else next(iter(outputs), None)
    return chosen, outputs.get(chosen) if chosen else None


def follow(job_id: str, store: JobStore, settings: Settings, timeout_s: float = 3600, run_id: str | None = None) -> int:
    """Print progress until the job ends (in run `run_id` when given: a re-run's job still shows how the run
    before ended), then the transcript (or the error)."""
    from stt import storage

    last = None

    def ended() -> dict | None:
        nonlocal last
        doc = store.get(job_id) or {}
        line = f"{doc.get('status', 'PENDING')}: chunks {doc.get('chunks_completed', 0)}/{doc.get('chunks_total', '?')}"
        if line != last:
            print(line, file=sys.stderr)
            last = line
        return doc if doc.get("status") in TERMINAL and run_id in (None, doc.get("run_id")) else None

    doc = poll_until(ended, timeout_s=timeout_s, interval_s=1)
    if not doc:
        print(f"stt: job {job_id} still running after {timeout_s:.0f}s", file=sys.stderr)
        return 2
    if doc["status"] == FAILED:
        err = doc.get("error") or {}
        print(f"FAILED [{err.get('code')}] {err.get('message')}", file=sys.stderr)
        return 1
    _, uri = published_output(doc)
    emit(storage.read_text(uri, settings) if uri else "", end="")
    return 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class BatchState:
    """Where a set of jobs stands: counts, audio seconds of the completed ones, wall seconds since submission."""

    total: int
    done: int
    failed: int
    audio_s: float
    wall_s: float

    @classmethod
    def of(cls, docs: list[dict], total: int, wall_s: float) -> "BatchState":
        completed = [d for d in docs if d.get("status") == COMPLETED]
        return cls(total=total, done=len(completed), failed=sum(d.get("status") == FAILED for d in docs),
                   audio_s=sum(float(d.get("duration_s") or 0) for d in completed), wall_s=wall_s)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def speed(self) -> float:
        """Real-time factor: audio seconds transcribed per wall second."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def line(self, width: int = 24) -> str:
        filled = round(width * self.finished / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} done, {self.failed} failed · "
                f"{self.audio_s / 3600:.3f} h audio · {self.speed:.2f}x real time · {_clock(self.wall_s)}")


class ProgressLine:
    """One progress line on a stream: rewritten in place on a terminal; otherwise a plain line when the counts
    change, and at least every `every_s` seconds."""

    def __init__(self, stream=None, every_s: float = 15.0):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self._last_counts, self._last_at, self._width = None, 0.0, 0

    def show(self, state: BatchState) -> None:
        text = state.line()
        if self.tty:
            text = text[: shutil.get_terminal_size().columns - 1]  # a wrapped line could not be rewritten in place
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            counts = (state.done, state.failed)
            if counts == self._last_counts and time.monotonic() - self._last_at < self.every_s:
                return
            self._last_counts, self._last_at = counts, time.monotonic()
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


def follow_all(job_ids: list[str], store: JobStore, *, started: float, timeout_s: float = 3600, poll_s: float = 1.0) -> int:
    """One progress line for all jobs until each has ended, then a summary (stderr); 1 if any job failed, 2 on timeout."""
    fields = {"status": 1, "source": 1, "duration_s": 1, "error": 1, "outputs": 1}
    progress, deadline = ProgressLine(), time.monotonic() + timeout_s
    while True:
        docs = list(store.collection.find({"_id": {"$in": job_ids}}, fields))
        state = BatchState.of(docs, len(job_ids), time.monotonic() - started)
        progress.show(state)
        if state.finished == state.total or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    progress.close()
    by_id = {d["_id"]: d for d in docs}
    for job_id in job_ids:
        doc = by_id.get(job_id, {})
        status_now = doc.get("status", "PENDING")
        if status_now == COMPLETED:
            detail = f"{float(doc.get('duration_s') or 0):.1f} s audio → {published_output(doc)[1]}"
        elif status_now == FAILED:
            err = doc.get("error") or {}
            detail = f"[{err.get('code')}] {err.get('message')}"
        else:
            detail = "not finished"
        print(f"{status_now:10s} {job_id}  {doc.get('source', '')}  {detail}", file=sys.stderr)
    print(f"{state.total} jobs: {state.done} completed, {state.failed} failed, {state.total - state.finished} unfinished · "
          f"{state.audio_s / 3600:.3f} h audio in {state.wall_s:.1f} s · {state.speed:.2f}x real time", file=sys.stderr)
    if state.finished < state.total:
        print(f"stt: {state.total - state.finished} job(s) still running after {timeout_s:.0f}s", file=sys.stderr)
        return 2
    return 1 if state.failed else 0


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
    """Print a job's transcript in the format asked for, else txt, else the first format published."""
    from stt import storage

    doc = cfg.store().get(args.job) or {}
    fmt, uri = published_output(doc, args.format)
    if doc.get("status") != COMPLETED or not uri:
        published = ", ".join(k for k, v in (doc.get("outputs") or {}).items() if v) or "none"
        print(f"stt: job {args.job} has no {fmt or ''} result (status {doc.get('status', 'unknown')}; published: {published})", file=sys.stderr)
        return 1
    emit(storage.read_text(uri, cfg.settings), end="")
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
    """Start a new run of a FAILED job (any job with --force) with its original parameters, or another prompt
    with --prompt; the job keeps its history."""
    store = cfg.store()
    doc = store.get(args.job)
    if not doc:
        print(f"stt: no job {args.job}", file=sys.stderr)
        return 1
    if doc.get("status") != FAILED and not args.force:
        print(f"stt: job {args.job} is {doc.get('status')}, not FAILED (use --force to re-run anyway)", file=sys.stderr)
        return 1
    checked = doc.get("options") or {"language": doc.get("language_requested", "auto"), "model": doc.get("model")}
    conf = {**(doc.get("conf") or {"source": doc["source"], **checked}), "job_id": args.job}
    if args.prompt is not None:
        conf["prompt"] = args.prompt
    attempt = len(doc.get("reruns") or []) + 2
    run_id = f"stt__{args.job}__run{attempt}"
    store.request_rerun(args.job, conf=conf, run_id=run_id)
    run = cfg.airflow().trigger("stt_transcribe", {k: v for k, v in conf.items() if v is not None}, run_id=run_id)
    print(f"job {args.job} re-run as {run['dag_run_id']}", file=sys.stderr)
    return follow(args.job, store, cfg.settings, run_id=run["dag_run_id"]) if args.wait else 0


def health(args, cfg: CliConfig) -> int:
    """Check whisper-cli, the models, MongoDB and storage; exit 1 when anything is broken."""
    from stt.health import run_checks

    storage_uris = tuple(args.storage or ([cfg.upload_uri] if cfg.upload_uri else []))
    checks = run_checks(cfg.settings, collection=cfg.store().collection, storage_uris=storage_uris)
    for check in checks:
        emit(f"{'ok' if check.ok else 'FAIL':4s}  {check.name:16s} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="upload (local files) and transcribe one or many recordings")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="local files, folders (their media files), globs (also quoted: 'recordings/*.mp3'), "
                        "s3://bucket/key or file:///path URIs (a URI ending in / or holding a glob: the objects it names)")
    p.add_argument("--language", choices=LANGUAGES, help="spoken language (default: auto, or en with an English-only default model)")
    p.add_argument("--model", help="whisper model (default: STT_DEFAULT_MODEL)")
    p.add_argument("--priority", default="normal", choices=("high", "normal", "low"))
    p.add_argument("--formats", nargs="+", choices=FORMATS)
    p.add_argument("--prompt", help="names and terms the recordings use, spelled as they should be written (whisper reads it before each chunk)")
    p.add_argument("--wait", action="store_true",
                   help="follow the jobs: one file prints its transcript; many show one progress line and a summary on stderr")
    p.add_argument("--timeout", type=float, default=3600, help="seconds --wait follows the jobs (exit 2 when some are still running)")
    p.set_defaults(func=submit)
    p = sub.add_parser("status", help="a job's document")
    p.add_argument("job")
    p.add_argument("--chunks", action="store_true", help="include per-chunk detail")
    p.set_defaults(func=status)
    p = sub.add_parser("result", help="print a job's transcript")
    p.add_argument("job")
    p.add_argument("--format", choices=FORMATS, help="default: txt if published, else the first format published")
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
    p.add_argument("--force", action="store_true", help="re-run a job that is not FAILED")
    p.add_argument("--prompt", help="re-run with this prompt instead of the job's own (empty: none)")
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
