"""Speed: the pipeline against whole-file whisper-cli on this machine, side by side in one run.

    .venv/bin/python -m bench.speed [--repeats 3] [--model base] [--loop-model base] [--workloads inbox,long,batch] [--inbox-files N] [--json]

Workloads:
  inbox  a mixed inbox as users fill one (bench/inbox.py): 24 files, about 20 minutes, 2 s to nearly 4 minutes,
         real English speech and one file in five Vietnamese, as WAV, MP3, M4A, FLAC and Ogg; the words said
         in each are known. Needs a multilingual model (left out by default with an English-only one).
  long   one recording of 10 minutes of real English speech (the clips of bench/speech.py, with pauses);
  batch  20 one-minute files of the same; both 16 kHz mono WAV (whisper-cli's own input format).
Each repeat measures, one after another on the idle machine:

  whole-file  whisper-cli on each file with the f16 model (`--loop-model`; by default the pipeline's model without
              its quantization suffix: `base` for `base-q8_0`) and all cores (`-t <cores>`), default decoding,
              writing txt, srt, vtt and json; a workload's files one after another, each told its true language.
              For the inbox, files whisper-cli cannot read (M4A) get a 16 kHz WAV decoded from them once, when
              the inbox is generated, never in the timed loop. Airflow is paused (SIGSTOP) meanwhile, so it
              takes nothing from these runs. The long recording once more with the pipeline's own decoding
              flags added (DTW word timing): the like-for-like figure.
  pipeline    under a real scheduler (`airflow standalone`: LocalExecutor, SQLite), files in a local storage
              folder, jobs in nx-27017, timed until the last job document's COMPLETED (`finished_at`, written
              by the publish task). Inbox: the files are copied into a fresh folder of the storage's inbox/, then
              stt_ingest is triggered once (REST): it claims them and starts one stt_transcribe run each, with
              the ingest defaults (language `auto`); timed from that trigger. Long and batch: stt_transcribe
              triggered directly, language `en`, the batch's 20 runs at once.

  lanes only  the pipeline's whisper work without Airflow: the files chunked and batched as the chunk step
              does, each batch one whisper-cli process with the pipeline's threads and flags, as many at
              once as the pool has slots: the floor any orchestration of these chunks can reach.

Once, after the repeats: `airflow dags test` (dag.test(): no scheduler, tasks one after another in one
process) on the 10-minute file: the orchestration floor, as its overhead.

Reported: wall times, ratios pipeline / whole-file (median and spread), real-time factors, orchestration
overhead per file (pipeline wall time minus the whisper time on the critical path: the longest whisper
process of the job, or all whisper time spread over the pool's slots if that is longer), peak memory of a
whisper task (the long job's batch that held the most in any repeat: its whisper-cli plus the pages only its
task process and supervisor hold, and the resident sets summed) against whisper-cli alone on the same spans
of the recording with the same flags, and CPU
utilisation of the machine (/proc/stat) per phase. For the inbox also the word error rate of both sides,
pooled per language (CER too for Vietnamese), from the published txt and whisper-cli's txt, and how many
files the pipeline detected in the wrong language.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bench import corpus, speech
from bench.inbox import InboxFile, error_rates, inbox_files
from stt import procs
from stt.config import REPO_ROOT, Settings
from stt.jobs import as_utc
from stt.devstack import STEPS_POOL, WHISPER_POOL, size_pools
from stt.localstack import AirflowStandalone, MongoServer, mongo_conn_uri
from stt.whisper import decode_args, is_english_only

WORKLOADS = ("inbox", "long", "batch")
LONG_S, BATCH_FILES, BATCH_FILE_S = 600.0, 20, 60.0
CORPUS_VERSION = 2


def f16_model(model: str) -> str:
    """The f16 model of the same size as a model name (`base-q8_0`, `base-q5_1` → `base`)."""
    return re.sub(r"-q\d.*$", "", model)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [bench.speed] {message}", file=sys.stderr, flush=True)


def recordings(long_s: float, batch_files: int, batch_file_s: float) -> tuple[Path, list[Path]]:
    """The long recording and the batch, generated once into the cache."""
    folder = corpus.cache_root() / "speed" / f"v{CORPUS_VERSION}"
    long_path = folder / f"long-{long_s:.0f}s.wav"
    batch = [folder / f"batch-{batch_file_s:.0f}s-{i:02d}.wav" for i in range(batch_files)]
    if not long_path.is_file() or not all(p.is_file() for p in batch):
        say(f"generating the recordings in {folder}")
        clips = speech.clips()
        corpus.real_speech(long_path, long_s, 1000, clips)
        for i, path in enumerate(batch):
            corpus.real_speech(path, batch_file_s, 2000 + i, clips)
    return long_path, batch


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


CLK_TCK = os.sysconf("SC_CLK_TCK")
COMPONENTS = (("LocalExecutor", "tasks"), ("airflow worker", "tasks"), ("api_server", "api-server"), ("api-server", "api-server"), ("dag-processor", "dag-processor"),
              ("triggerer", "triggerer"), ("serve-logs", "serve-logs"), ("scheduler", "scheduler"), ("airflow standalone", "standalone"),
              ("nx-27017", "mongo"), ("bench.speed", "benchmark"))


def process_cpu() -> dict[int, tuple[str, float]]:
    """Own CPU seconds (user + system, no children) of every process, labelled by component."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().split("(", 1)[1].rsplit(")", 1)
            fields = rest.split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") + " " + comm
        except (OSError, IndexError, ValueError):
            continue
        label = next((name for key, name in COMPONENTS if key in cmdline), "other")
        found[int(stat.parent.name)] = (label, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return found


@contextmanager
def cpu_meter(result: dict):
    """Puts the machine's CPU utilisation over the block (0-1, all cores) into result['cpu_util'], its busy CPU
    seconds into result['cpu_s'], and the own CPU seconds of Airflow's long-lived processes, Mongo and the
    benchmark into result['cpu_s_by'] (short-lived processes, such as task processes and whisper-cli, are
    not seen there: their share is what the caller subtracts from cpu_s)."""
    busy0, total0 = cpu_times()
    before = process_cpu()
    yield
    after = process_cpu()
    busy1, total1 = cpu_times()
    result["cpu_util"] = round((busy1 - busy0) / max(total1 - total0, 1e-9), 3)
    result["cpu_s"] = round((busy1 - busy0) / CLK_TCK, 1)
    by: dict[str, float] = {}
    for pid, (label, seconds) in after.items():
        if pid in before and label not in ("tasks", "other"):
            by[label] = by.get(label, 0.0) + seconds - before[pid][1]
    result["cpu_s_by"] = {k: round(v, 1) for k, v in sorted(by.items()) if v >= 0.05}


def timed_process(args: list[str]) -> tuple[int, dict, str]:
    """Run one process to its end: its exit code; wall seconds, CPU seconds and peak resident memory; its stderr."""
    with tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
        peaks: list[float] = [0.0]
        done = threading.Event()

        def watch() -> None:  # VmHWM while it runs: a finished child's rusage also counts this process's own peak
            while not done.wait(0.1):
                peaks.append(procs.peak_rss_mb(proc.pid) or 0.0)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        done.set()
        watcher.join()
        peak_mb = max(peaks)
        stderr.seek(0)
        log = stderr.read().decode(errors="replace")
    figures = {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "peak_rss_mb": peak_mb}
    return os.waitstatus_to_exitcode(status), figures, log


def run_whisper_cli(args: list[str]) -> dict:
    """One whisper-cli process: wall seconds, CPU seconds and peak resident memory."""
    returncode, figures, log = timed_process(args)
    if returncode != 0:
        raise RuntimeError(f"whisper-cli failed ({returncode}): {log[-1000:]}")
    return figures


def whole_file(wav: Path, settings: Settings, model: str, threads: int, out_dir: Path, extra_args: tuple[str, ...] = (),
               language: str = "en") -> dict:
    """whisper-cli on a whole file, as a user would run it: told the language, the four output formats
    (`out_dir/<stem>.txt` ...), default decoding (or `extra_args` on top: the pipeline's own decoding flags,
    for the like-for-like figure)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_whisper_cli([str(settings.whisper.cli), "-m", str(settings.whisper.model_path(model)), "-f", str(wav), "-l", language,
                            "-t", str(threads), "-otxt", "-osrt", "-ovtt", "-oj", "-of", str(out_dir / wav.stem), *extra_args])


def whole_file_loop(files: list[tuple[Path, str]], settings: Settings, model: str, threads: int, out_dir: Path) -> dict:
    """whisper-cli on each (file, language), one after another: wall time the sum of the runs."""
    meter: dict = {}
    with cpu_meter(meter):
        runs = [whole_file(path, settings, model, threads, out_dir, language=language) for path, language in files]
    return {"wall_s": round(sum(r["wall_s"] for r in runs), 3), "whisper_cpu_s_sum": round(sum(r["cpu_s"] for r in runs), 3),
            "files": runs, **meter}


def cut(wav: Path, start_s: float, end_s: float, dest: Path) -> Path:
    with wave.open(str(wav), "rb") as src:
        rate = src.getframerate()
        src.setpos(int(start_s * rate))
        frames = src.readframes(int((end_s - start_s) * rate))
        with wave.open(str(dest), "wb") as out:
            out.setparams(src.getparams())
            out.writeframes(frames)
    return dest


class Pipeline:
    """Mongo (nx-27017), a storage folder and `airflow standalone` with the repository's DAGs."""

    def __init__(self, root: Path, model: str, slots: int):
        self.root, self.model, self.slots = root, model, slots
        self.storage = root / "storage"
        (self.storage / "direct").mkdir(parents=True, exist_ok=True)  # sources of directly triggered jobs: outside the inbox
        self.mongo = MongoServer(root / "mongo")
        self.airflow: AirflowStandalone | None = None

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"}
        env.setdefault("AIRFLOW_CONFIG", str(REPO_ROOT / "airflow.cfg"))
        env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
        env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO_ROOT / "plugins"))
        env.update({"AIRFLOW_CONN_STT_MONGO": mongo_conn_uri(self.mongo.port), "STT_LOCAL_ROOT": str(self.storage),
                    "STT_WHISPER_POOL": WHISPER_POOL, "STT_STEPS_POOL": STEPS_POOL, "STT_SCRATCH_DIR": str(self.root / "scratch"),
                    "STT_INGEST_SCHEDULE": "none", "STT_INGEST_MODEL": self.model})
        return env

    def start(self) -> "Pipeline":
        self.mongo.start()
        self.airflow = AirflowStandalone(self.root / "airflow", self.env()).start()
        self.client = self.airflow.client()
        size_pools(self.client)  # as the local stack: whisper cores ÷ threads, steps one per core
        for dag_id in ("stt_transcribe", "stt_ingest"):
            self.client.wait_for_dag(dag_id)
            self.client.unpause(dag_id)
        import pymongo

        self.jobs = pymongo.MongoClient(self.mongo.url)["stt"]["jobs"]
        return self

    def stop(self) -> None:
        if self.airflow:
            self.resume()
            self.airflow.stop()
        self.mongo.stop()

    def pause(self) -> None:
        """Freeze every Airflow process (SIGSTOP to the process group) so whole-file runs have the machine."""
        os.killpg(self.airflow.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.airflow.process.pid, signal.SIGCONT)

    def source(self, wav: Path) -> str:
        dest = self.storage / "direct" / wav.name
        if not dest.exists():
            shutil.copyfile(wav, dest)
        return f"file://{dest}"

    def run(self, wavs: list[Path], label: str, timeout_s: float = 1800.0) -> dict:
        """Trigger one stt_transcribe run per file at once; wall time until the last job's COMPLETED."""
        sources = [self.source(w) for w in wavs]
        job_ids = [f"{label}-{i:02d}" for i in range(len(wavs))]
        result: dict = {}
        with cpu_meter(result):
            started = datetime.now(timezone.utc)
            for job_id, src in zip(job_ids, sources):
                self.client.trigger("stt_transcribe", {"source": src, "language": "en", "model": self.model, "job_id": job_id},
                                    run_id=f"stt__{job_id}")
            docs = self.finished_jobs(lambda doc: doc["_id"] in job_ids, len(job_ids), label, timeout_s)
        return self.figures(result, docs, started)

    def ingest(self, files: list[Path], label: str, timeout_s: float = 3600.0) -> tuple[dict, list[dict]]:
        """Drop the files into a fresh inbox folder (their modification times kept: not still being copied), then
        trigger stt_ingest once; wall time from that trigger until the last job's COMPLETED. Also the job documents."""
        folder = self.storage / "inbox" / label
        folder.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, folder / path.name)
        prefix = f"file://{folder}/"
        result: dict = {}
        with cpu_meter(result):
            started = datetime.now(timezone.utc)
            self.client.trigger("stt_ingest", {}, run_id=f"ingest__{label}")
            docs = self.finished_jobs(lambda doc: str(doc.get("source", "")).startswith(prefix), len(files), label, timeout_s)
        return self.figures(result, docs, started), docs

    def finished_jobs(self, wanted, count: int, label: str, timeout_s: float) -> list[dict]:
        """The `count` job documents `wanted` selects, once every one is COMPLETED; RuntimeError if any failed."""
        deadline = time.monotonic() + timeout_s
        while True:
            docs = [doc for doc in self.jobs.find({}) if wanted(doc)]
            done = [d for d in docs if d.get("status") in ("COMPLETED", "FAILED")]
            if len(done) >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: {len(done)}/{count} jobs finished after {timeout_s:.0f}s")
            time.sleep(1)  # the wall time comes from finished_at, not from this poll
        failed = {d["_id"]: d.get("error") for d in docs if d["status"] != "COMPLETED"}
        if failed:
            raise RuntimeError(f"{label}: jobs failed: {failed}")
        return docs

    def figures(self, result: dict, docs: list[dict], started: datetime) -> dict:
        """Wall time from `started` to the last COMPLETED, the jobs' whisper figures, and CPU besides whisper."""
        finished = max(as_utc(d["finished_at"]) for d in docs)
        result["wall_s"] = round((finished - started).total_seconds(), 3)
        result.update(job_figures(docs, self.slots))
        result["lanes"] = lane_occupancy(docs, started, finished, self.slots)
        # CPU the machine spent besides whisper: Airflow, the pipeline's own steps, Mongo (the benchmark's polling too)
        result["other_cpu_s"] = round(result["cpu_s"] - result["whisper_cpu_s_sum"], 1)
        by = result["cpu_s_by"]
        by["task processes and executor workers"] = round(result["other_cpu_s"] - sum(by.values()), 1)
        by["whisper"] = result["whisper_cpu_s_sum"]
        return result


def lane_occupancy(docs: list[dict], started: datetime, finished: datetime, slots: int) -> dict:
    """Seconds of the wall time during which 0, 1, … whisper batches ran (a batch from its chunks' start to its
    finish, from the job documents), and how long the last `slots - 1` lanes stood idle at the end (the tail)."""
    spans = []
    for doc in docs:
        chunks = doc.get("chunks") or {}
        for batch in (doc.get("batches") or {}).values():
            starts = [as_utc(chunks[str(i)]["started_at"]) for i in batch.get("chunks", []) if chunks.get(str(i), {}).get("started_at")]
            if starts and batch.get("finished_at"):
                spans.append(((min(starts) - started).total_seconds(), (as_utc(batch["finished_at"]) - started).total_seconds()))
    wall = (finished - started).total_seconds()
    edges = sorted({0.0, wall, *(t for span in spans for t in span)})
    running: dict[int, float] = defaultdict(float)
    for a, b in zip(edges, edges[1:]):
        middle = (a + b) / 2
        running[min(sum(s <= middle < e for s, e in spans), slots)] += b - a
    ends = sorted(e for _, e in spans)
    tail = wall - ends[-slots] if len(ends) >= slots else wall
    return {"seconds_with_batches_running": {str(n): round(running[n], 1) for n in range(slots + 1)},
            "first_batch_start_s": round(min((s for s, _ in spans), default=0.0), 1), "tail_s": round(tail, 1)}


def job_figures(docs: list[dict], slots: int) -> dict:
    """Whisper time, critical path and memory of finished jobs, from their documents."""
    batches = [b for d in docs for b in (d.get("batches") or {}).values() if "whisper_s" in b]
    whisper = [b["whisper_s"] for b in batches]
    critical = max(max(whisper), sum(whisper) / slots)
    detections = [d.get("language_detected") or {} for d in docs]
    return {
        "jobs": len(docs),
        "audio_s": round(sum(d["duration_s"] for d in docs), 1),
        "chunks": sum(d["chunks_total"] for d in docs),
        "batches": len(batches),
        "whisper_s_sum": round(sum(whisper), 3),
        "whisper_s_critical": round(critical, 3),
        "whisper_cpu_s_sum": round(sum(b.get("whisper_cpu_s", 0.0) for b in batches), 3),
        # with `auto`, chunks detect their language while they are transcribed; these were decoded again in the
        # job's language by the finish task (their batch had voted otherwise; in whisper's time, one more batch)
        "language_decoded_again": sum(len(detected.get("decoded_again") or []) for detected in detections),
        "whisper_rss_mb_max": max(b["whisper_rss_mb"] for b in batches),
        "task_rss_mb_max": max(b["task_rss_mb"] for b in batches),
        "task_uss_mb_max": max(b.get("task_uss_mb", b["task_rss_mb"]) for b in batches),
        "timings": {d["_id"]: d.get("timings") for d in docs[:1]},
    }


def inbox_whole_file(files: list[InboxFile], settings: Settings, model: str, threads: int, out_dir: Path) -> dict:
    """The whole-file loop over the inbox, each file told its language; with its error rates."""
    result = whole_file_loop([(f.whole_file_input, f.language) for f in files], settings, model, threads, out_dir)
    result["audio_s"] = round(sum(f.duration_s for f in files), 1)
    result["wer"] = error_rates([(f, (out_dir / f"{f.whole_file_input.stem}.txt").read_text()) for f in files])
    return result


def inbox_pipeline(pipeline: Pipeline, files: list[InboxFile], label: str) -> dict:
    """The inbox through stt_ingest; with the error rates of the published txt and the files whose language
    was detected wrongly."""
    result, docs = pipeline.ingest([f.path for f in files], label)
    by_name = {f.path.name: f for f in files}
    transcribed, misdetected = [], []
    for doc in docs:
        item = by_name[doc["source"].rsplit("/", 1)[-1]]
        transcribed.append((item, Path(doc["outputs"]["txt"].removeprefix("file://")).read_text()))
        if doc.get("language") != item.language:
            misdetected.append(f"{item.path.name}: {doc.get('language')}")
    result["wer"] = error_rates(transcribed)
    result["language_misdetected"] = sorted(misdetected)
    return result


def dag_test(pipeline: Pipeline, wav: Path, label: str) -> dict:
    """`airflow dags test` (dag.test()) on one file in its own Airflow home: no scheduler, tasks in series."""
    home = pipeline.root / "dagtest-home"
    env = {**pipeline.env(), "AIRFLOW_HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    conf = {"source": pipeline.source(wav), "language": "en", "model": pipeline.model, "job_id": label}
    log = home / "dags-test.log"
    with open(log, "wb") as out:
        subprocess.run([*airflow, "dags", "test", "stt_transcribe", "--conf", json.dumps(conf)], env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    doc = pipeline.jobs.find_one({"_id": label})
    if not doc or doc.get("status") != "COMPLETED":
        raise RuntimeError(f"dags test did not complete the job: {doc and doc.get('error')}; see {log}")
    wall = (as_utc(doc["finished_at"]) - as_utc(doc["started_at"])).total_seconds()
    figures = job_figures([doc], 1)  # tasks run one at a time: all whisper time is on the critical path
    return {"wall_s": round(wall, 3), **figures, "overhead_s": round(wall - figures["whisper_s_sum"], 3)}


def peak_batch(docs: list[dict]) -> tuple[str, float]:
    """The batch number whose task (Python process plus its whisper-cli) held the most memory in any of these
    runs of the same job, and that peak in MB."""
    peaks: dict[str, float] = {}
    for doc in docs:
        for number, b in (doc.get("batches") or {}).items():
            if "whisper_rss_mb" in b:
                peaks[number] = max(peaks.get(number, 0.0), b["whisper_rss_mb"] + b["task_rss_mb"])
    number = max(peaks, key=peaks.get)
    return number, peaks[number]


def task_added_mb(batch: dict) -> float:
    """What a whisper task adds to its worker: its whisper-cli, and the pages only the task process and its
    Airflow supervisor hold (the rest they share with the executor's processes)."""
    return round(batch["whisper_rss_mb"] + (batch.get("task_uss_mb") or 0.0) + (batch.get("supervisor_uss_mb") or 0.0), 1)


def memory_alone(settings: Settings, model: str, long_wav: Path, doc: dict, number: str, threads: int, work: Path) -> dict:
    """whisper-cli alone on the recording's spans of one batch's chunks (cut whole, pauses not shortened), through
    the pipeline's runner with its threads and flags: the memory that work needs without a task around it."""
    from stt import whisper

    spans = [doc["chunks"][str(index)] for index in doc["batches"][number]["chunks"]]
    wavs = [cut(long_wav, c["start_s"], c["end_s"], work / f"alone-{i}.wav") for i, c in enumerate(spans)]
    stats = whisper.transcribe_many(wavs, cli=settings.whisper.cli, model_path=settings.whisper.model_path(model), language="en", threads=threads,
                                    timeout_s=settings.whisper.timeout(sum(c["end_s"] - c["start_s"] for c in spans)),
                                    extra_args=decode_args(model, settings.whisper.word_timing), on_result=lambda *_: None,
                                    nice=settings.whisper.nice)
    return {"batch": number, "chunks": len(wavs), "wall_s": round(stats.seconds, 3), "cpu_s": stats.cpu_s, "peak_rss_mb": stats.peak_rss_mb}


def whisper_lanes(wavs: list[Path], settings: Settings, model: str, slots: int, work: Path) -> dict:
    """The pipeline's whisper work without Airflow: each file chunked and batched exactly as the chunk step
    does, then every batch through the pipeline's own runner (`whisper.transcribe_many`, pipeline threads and
    flags), `slots` batches at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from stt import audio, batches, pipeline, whisper

    lanes = []
    for wav in wavs:
        decoded = audio.load(wav)
        plan = pipeline.chunk_plan(decoded, settings.chunking.method, settings)
        files = audio.cut_chunks(decoded, plan.chunks, work / wav.stem)
        refs = [{**c.as_dict(), "duration_s": c.duration_s, "path": f} for c, f in zip(plan.chunks, files)]
        for batch in batches.plan_batches(refs, lanes=slots, max_s=settings.chunking.batch_max_s, min_s=settings.chunking.batch_min_s,
                                              rounds=settings.chunking.batch_rounds):
            audible = [ref["path"] for ref in batch if not ref["silent"]]
            if audible:
                lanes.append(audible)

    def run(chunk_files: list[Path]) -> whisper.ProcessStats:
        return whisper.transcribe_many(chunk_files, cli=settings.whisper.cli, model_path=settings.whisper.model_path(model), language="en",
                                       threads=settings.whisper.threads, timeout_s=settings.whisper.timeout(settings.chunking.batch_max_s),
                                       extra_args=decode_args(model, settings.whisper.word_timing), on_result=lambda *_: None,
                                       nice=settings.whisper.nice)

    result: dict = {}
    with cpu_meter(result):
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=slots) as pool:
            runs = list(pool.map(run, lanes))
        result["wall_s"] = round(time.monotonic() - started, 3)
    result.update(processes=len(runs), whisper_s_sum=round(sum(r.seconds for r in runs), 3),
                  whisper_cpu_s_sum=round(sum(r.cpu_s for r in runs), 3))
    shutil.rmtree(work, ignore_errors=True)
    return result


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}


def median(values) -> float:
    return round(statistics.median(values), 3)


def ratios(repeats: list[dict], workload: str, side: str, base: str = "whole_file") -> list[float]:
    return [r[workload][side]["wall_s"] / r[workload][base]["wall_s"] for r in repeats]


def median_error_rates(runs: list[dict]) -> dict:
    """Per language, the median over the repeats of each error rate."""
    return {language: {**rates, **{k: median(run[language][k] for run in runs) for k in ("wer", "cer") if k in rates}}
            for language, rates in runs[0].items()}


def summarise(repeats: list[dict], extra: dict) -> dict:
    out: dict = {}
    spreads: dict = {}
    first = repeats[0]
    if "inbox" in first:
        inbox_ratio = ratios(repeats, "inbox", "pipeline")
        sides = {side: [r["inbox"][side] for r in repeats] for side in ("pipeline", "whole_file")}
        audio_s = first["inbox"]["whole_file"]["audio_s"]
        wer = {side: median_error_rates([run["wer"] for run in runs]) for side, runs in sides.items()}
        out["inbox_ratio"] = median(inbox_ratio)
        spreads["inbox_ratio"] = spread(inbox_ratio)
        out["inbox"] = {
            "files": extra["inbox_files"],
            "audio_s": audio_s,
            "audio_h": round(audio_s / 3600, 3),
            "wall_s": {side: median(run["wall_s"] for run in runs) for side, runs in sides.items()},
            "real_time_factor": {side: round(audio_s / median(run["wall_s"] for run in runs), 2) for side, runs in sides.items()},
            "wer": wer,
            "wer_ratio": {language: round(wer["pipeline"][language]["wer"] / wer["whole_file"][language]["wer"], 3)
                          if wer["whole_file"][language]["wer"] else None for language in wer["whole_file"]},
            "cpu_s": {side: {"whisper": median(run["whisper_cpu_s_sum"] for run in runs),
                             "other": median(run["cpu_s"] - run["whisper_cpu_s_sum"] for run in runs)} for side, runs in sides.items()},
            "language_misdetected": [run["language_misdetected"] for run in sides["pipeline"]],
        }
    if "long" in first:
        long_ratio = ratios(repeats, "long", "pipeline")
        overhead_long = [r["long"]["pipeline"]["wall_s"] - r["long"]["pipeline"]["whisper_s_critical"] for r in repeats]
        floor_long = ratios(repeats, "long", "whisper_lanes")
        same = ratios(repeats, "long", "pipeline", "whole_file_same_decoding")
        floor_same = ratios(repeats, "long", "whisper_lanes", "whole_file_same_decoding")
        out.update(long_ratio=median(long_ratio), long_ratio_same_decoding=median(same), whisper_floor_long_ratio=median(floor_long))
        spreads.update(long_ratio=spread(long_ratio), long_ratio_same_decoding=spread(same), whisper_floor_long_ratio_same_decoding=spread(floor_same),
                       whisper_floor_long_ratio=spread(floor_long), overhead_s_long_file=spread(overhead_long))
        alone = extra["memory_alone"]
        task_peak, task_unique = alone["task_peak_rss_mb"], alone["task_peak_unique_mb"]
        out["peak_memory_ratio"] = round(task_unique / alone["peak_rss_mb"], 3)
        out["peak_rss_ratio"] = round(task_peak / alone["peak_rss_mb"], 3)
        out["peak_rss_mb"] = {"whisper_task_added": task_unique, "whisper_task_rss": task_peak, "whisper_cli_alone": alone["peak_rss_mb"],
                              "batch": alone["batch"], "whole_file_whisper_cli": max(r["long"]["whole_file"].get("peak_rss_mb", 0.0) for r in repeats)}
    if "batch" in first:
        batch_ratio = ratios(repeats, "batch", "pipeline")
        floor_batch = ratios(repeats, "batch", "whisper_lanes")
        overhead_batch = [(r["batch"]["pipeline"]["wall_s"] - r["batch"]["pipeline"]["whisper_s_critical"]) / r["batch"]["pipeline"]["jobs"] for r in repeats]
        out.update(batch_ratio=median(batch_ratio), whisper_floor_batch_ratio=median(floor_batch), overhead_s_per_file=median(overhead_batch))
        spreads.update(batch_ratio=spread(batch_ratio), whisper_floor_batch_ratio=spread(floor_batch), overhead_s_per_file=spread(overhead_batch))
    return {**out, "spread": spreads, **extra, "repeats": repeats}


def percent(rates: dict) -> str:
    return f"{100 * rates['wer']:.1f}%" + (f" (CER {100 * rates['cer']:.1f}%)" if "cer" in rates else "")


def inbox_rows(report: dict) -> list[str]:
    inbox, s = report["inbox"], report["spread"]["inbox_ratio"]
    rows = [f"{'':30s} {'whole-file':>11s} {'pipeline':>11s} {'ratio':>7s}"]
    for i, r in enumerate(report["repeats"]):
        w, p = r["inbox"]["whole_file"]["wall_s"], r["inbox"]["pipeline"]["wall_s"]
        rows.append(f"{f'mixed inbox (run {i + 1})':30s} {w:9.1f} s {p:9.1f} s {p / w:7.3f}")
    rows += [
        "",
        f"inbox: {len(report['repeats'][0]['inbox']['whole_file']['files'])} files, {inbox['audio_s'] / 60:.1f} min of audio ({inbox['audio_h']:.3f} h); "
        f"real-time factor whole-file {inbox['real_time_factor']['whole_file']:.1f}x, pipeline {inbox['real_time_factor']['pipeline']:.1f}x",
        f"inbox_ratio (median)          {report['inbox_ratio']:.3f}   [{s['min']:.3f}-{s['max']:.3f}]   target ≤ 1.0 (aim 0.7)",
    ]
    for language, rates in inbox["wer"]["whole_file"].items():
        rows.append(f"inbox WER, {language} ({rates['files']} files, {rates['words']} words): whole-file {percent(rates)}, "
                    f"pipeline {percent(inbox['wer']['pipeline'][language])}")
    cpu = inbox["cpu_s"]
    rows.append(f"inbox CPU seconds (median): whole-file whisper {cpu['whole_file']['whisper']:.1f}, other {cpu['whole_file']['other']:.1f}; "
                f"pipeline whisper {cpu['pipeline']['whisper']:.1f}, other {cpu['pipeline']['other']:.1f}")
    last = report["repeats"][-1]["inbox"]["pipeline"]
    rows.append(f"pipeline: chunks decoded again in their job's language after the job's vote (last run): {last['language_decoded_again']}")
    rows.append("pipeline whisper lanes, inbox (last run): " + lanes_row(last["lanes"]))
    wrong = inbox["language_misdetected"][-1]
    rows.append(f"language detected wrongly by the pipeline (last run): {', '.join(wrong) if wrong else 'none'}")
    return rows


def lanes_row(lanes: dict) -> str:
    running = ", ".join(f"{n} running {s:.1f} s" for n, s in sorted(lanes["seconds_with_batches_running"].items(), reverse=True))
    return f"{running}; first batch after {lanes['first_batch_start_s']:.1f} s; tail {lanes['tail_s']:.1f} s"


def table(report: dict) -> str:
    first = report["repeats"][0]
    rows = inbox_rows(report) + [""] if "inbox" in first else []
    workloads = [(name, label) for name, label in (("long", f"{report['long_s']:.0f} s recording"),
                                                   ("batch", f"{report['batch_files']} × {report['batch_file_s']:.0f} s files")) if name in first]
    if not workloads:
        return "\n".join(rows)
    rows.append(f"{'':30s} {'whole-file':>11s} {'lanes only':>11s} {'pipeline':>11s} {'ratio':>7s} {'floor':>7s} {'pipeline RTF':>13s}")
    for name, label in workloads:
        for i, r in enumerate(report["repeats"]):
            w, f, p = r[name]["whole_file"]["wall_s"], r[name]["whisper_lanes"]["wall_s"], r[name]["pipeline"]["wall_s"]
            rows.append(f"{label + f' (run {i + 1})':30s} {w:9.1f} s {f:9.1f} s {p:9.1f} s {p / w:7.3f} {f / w:7.3f} {r[name]['pipeline']['audio_s'] / p:11.1f}x")
    s = report["spread"]
    rows.append("")
    if "long" in first:
        rows += [
            f"long_ratio (median)           {report['long_ratio']:.3f}   [{s['long_ratio']['min']:.3f}-{s['long_ratio']['max']:.3f}]   target ≤ 0.80",
            f"whisper floor (lanes only / whole-file, median), long: {report['whisper_floor_long_ratio']:.3f}",
            f"long file against whole-file with the pipeline's decoding flags ({' '.join(first['long']['whole_file_same_decoding']['flags']) or 'none'}): "
            f"{report['long_ratio_same_decoding']:.3f}   [{s['long_ratio_same_decoding']['min']:.3f}-{s['long_ratio_same_decoding']['max']:.3f}], "
            f"floor {s['whisper_floor_long_ratio_same_decoding']['median']:.3f}",
            f"overhead, long file          {s['overhead_s_long_file']['median']:.2f} s  [{s['overhead_s_long_file']['min']:.2f}-{s['overhead_s_long_file']['max']:.2f}]",
            f"peak_memory_ratio             {report['peak_memory_ratio']:.3f}   (batch {report['peak_rss_mb']['batch']}: {report['peak_rss_mb']['whisper_task_added']:.0f} MB, its whisper-cli and "
            f"the pages only the task and its supervisor hold; whisper-cli alone on its chunks {report['peak_rss_mb']['whisper_cli_alone']:.0f} MB)   target ≤ 1.5",
            f"  by resident sets, pages shared with Airflow's processes counted again {report['peak_rss_ratio']:.3f}   ({report['peak_rss_mb']['whisper_task_rss']:.0f} MB); "
            f"whisper-cli on the whole file {report['peak_rss_mb']['whole_file_whisper_cli']:.0f} MB",
        ]
    if "batch" in first:
        rows += [
            f"batch_ratio (median)          {report['batch_ratio']:.3f}   [{s['batch_ratio']['min']:.3f}-{s['batch_ratio']['max']:.3f}]   target ≤ 0.95",
            f"whisper floor (lanes only / whole-file, median), batch: {report['whisper_floor_batch_ratio']:.3f}",
            f"overhead_s_per_file (batch)   {report['overhead_s_per_file']:.2f} s  [{s['overhead_s_per_file']['min']:.2f}-{s['overhead_s_per_file']['max']:.2f}]   target ≤ 3 s",
        ]
        by = report["repeats"][-1]["batch"]["pipeline"]["cpu_s_by"]
        rows.append("CPU seconds by component, batch, last run: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])))
    if report.get("dag_test"):
        d = report["dag_test"]
        rows.append(f"dag.test() floor, long file   {d['wall_s']:.1f} s wall, {d['whisper_s_sum']:.1f} s whisper (batches in series), overhead {d['overhead_s']:.2f} s")
    for name, _ in workloads:
        rows.append(f"pipeline whisper lanes, {name} (last run): " + lanes_row(report["repeats"][-1][name]["pipeline"]["lanes"]))
    for name, _ in workloads:
        rows.append(f"CPU utilisation (whole-file / pipeline), {name}: "
                    + ", ".join(f"{r[name]['whole_file']['cpu_util']:.0%}/{r[name]['pipeline']['cpu_util']:.0%}" for r in report["repeats"]))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="base")
    parser.add_argument("--loop-model", default=None, help="model of the whole-file whisper-cli loop (default: --model without its quantization suffix)")
    parser.add_argument("--workloads", default="", help="comma-separated, of inbox, long, batch (default: all; without inbox for an English-only model)")
    parser.add_argument("--inbox-files", type=int, default=None, help="only the N shortest files of the mixed inbox (default: all 24)")
    parser.add_argument("--long-s", type=float, default=LONG_S, help="length of the long recording (default 600)")
    parser.add_argument("--batch-files", type=int, default=BATCH_FILES)
    parser.add_argument("--batch-file-s", type=float, default=BATCH_FILE_S)
    parser.add_argument("--no-dag-test", action="store_true", help="skip the dag.test() floor")
    parser.add_argument("--json", action="store_true", help="print one JSON object after the table")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, outputs)")
    args = parser.parse_args(argv)
    loop_model = args.loop_model or f16_model(args.model)
    workloads = [w for w in args.workloads.split(",") if w] or [w for w in WORKLOADS if w != "inbox" or not is_english_only(args.model)]
    if unknown := set(workloads) - set(WORKLOADS):
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    for model in {args.model, loop_model}:
        if "inbox" in workloads and is_english_only(model):
            parser.error(f"the inbox workload has Vietnamese and detects languages: model {model!r} is English-only")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on `kill` too (finally below)

    settings = Settings.from_env()
    cores = os.cpu_count() or 1
    slots = max(1, cores // settings.whisper.threads)
    inbox = inbox_files(args.inbox_files) if "inbox" in workloads else []
    long_wav, batch = recordings(args.long_s, args.batch_files, args.batch_file_s) if {"long", "batch"} & set(workloads) else (None, [])
    root = Path(tempfile.mkdtemp(prefix="stt-bench-speed-"))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    say(f"work folder {root}; model {args.model}, whole-file loop {loop_model}; {cores} cores; pipeline: {settings.whisper.threads} whisper thread(s) × {slots} pool slots; "
        f"workloads {', '.join(workloads)}")
    pipeline = Pipeline(root, args.model, slots)
    repeats = []
    try:
        pipeline.start()
        say("warm-up job (parses the DAGs, loads the model into the page cache)")
        if inbox:
            pipeline.ingest([inbox[0].path], "warmup")
        else:
            pipeline.run([batch[0] if batch else long_wav], "warmup")
        for i in range(args.repeats):
            rep: dict = {name: {} for name in workloads}
            pipeline.pause()
            try:
                if "inbox" in workloads:
                    rep["inbox"]["whole_file"] = inbox_whole_file(inbox, settings, loop_model, cores, root / f"whole-inbox-r{i}")
                    say(f"run {i + 1}: whole-file, inbox: {rep['inbox']['whole_file']['wall_s']:.1f} s (sum of {len(inbox)} runs)")
                if "long" in workloads:
                    with cpu_meter(rep["long"].setdefault("whole_file", {})):
                        rep["long"]["whole_file"].update(whole_file(long_wav, settings, loop_model, cores, root / "whole"))
                    say(f"run {i + 1}: whole-file, long: {rep['long']['whole_file']['wall_s']:.1f} s")
                    flags = decode_args(args.model, settings.whisper.word_timing)
                    # no flags of its own (no DTW preset, or STT_WORD_TIMING=tokens): the default run already is like for like
                    same = whole_file(long_wav, settings, loop_model, cores, root / "whole", flags) if flags else rep["long"]["whole_file"]
                    rep["long"]["whole_file_same_decoding"] = {"flags": list(flags), **same}
                    say(f"run {i + 1}: whole-file with the pipeline's decoding flags {' '.join(flags) or '(none)'}, long: "
                        f"{rep['long']['whole_file_same_decoding']['wall_s']:.1f} s")
                if "batch" in workloads:
                    rep["batch"]["whole_file"] = whole_file_loop([(w, "en") for w in batch], settings, loop_model, cores, root / "whole")
                    say(f"run {i + 1}: whole-file, batch: {rep['batch']['whole_file']['wall_s']:.1f} s (sum of {len(batch)} runs)")
                for name, wavs in (("long", [long_wav]), ("batch", batch)):
                    if name in workloads:
                        rep[name]["whisper_lanes"] = whisper_lanes(wavs, settings, args.model, slots, root / "lanes")
                        say(f"run {i + 1}: whisper lanes without Airflow, {name}: {rep[name]['whisper_lanes']['wall_s']:.1f} s")
            finally:
                pipeline.resume()
            time.sleep(5)  # let the scheduler catch up on the heartbeats it missed while paused
            if "inbox" in workloads:
                rep["inbox"]["pipeline"] = inbox_pipeline(pipeline, inbox, f"inbox-r{i}")
                say(f"run {i + 1}: pipeline, inbox: {rep['inbox']['pipeline']['wall_s']:.1f} s")
            for name, wavs in (("long", [long_wav]), ("batch", batch)):
                if name in workloads:
                    rep[name]["pipeline"] = pipeline.run(wavs, f"{name}-r{i}")
                    say(f"run {i + 1}: pipeline, {name}: {rep[name]['pipeline']['wall_s']:.1f} s")
            repeats.append(rep)
        extra = {"model": args.model, "loop_model": loop_model, "cores": cores, "whisper_threads": settings.whisper.threads, "pool_slots": slots, "workloads": workloads,
                 "long_s": args.long_s, "batch_files": args.batch_files, "batch_file_s": args.batch_file_s, "inbox_files": len(inbox)}
        if "long" in workloads:
            pipeline.pause()
            try:
                docs = [pipeline.jobs.find_one({"_id": f"long-r{i}-00"}) for i in range(len(repeats))]
                number, task_peak = peak_batch(docs)
                extra["memory_alone"] = memory_alone(settings, args.model, long_wav, docs[0], number, settings.whisper.threads, root)
                extra["memory_alone"].update(task_peak_rss_mb=task_peak, task_peak_unique_mb=max(task_added_mb(d["batches"][number]) for d in docs))
            finally:
                pipeline.resume()
            if not args.no_dag_test:
                say("dag.test() on the long recording")
                extra["dag_test"] = dag_test(pipeline, long_wav, "dagtest-long")
    finally:
        pipeline.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = summarise(repeats, extra)
    print(table(report))
    if args.json:
        print(json.dumps(report, indent=1, default=str, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
