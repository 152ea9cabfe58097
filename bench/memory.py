"""Memory: the chunk step on a 6-hour recording beside a 1-minute one, and the merge and publish steps on a
6-hour set of chunk results beside a 1-minute set.

    .venv/bin/python -m bench.memory [--long-s 21600] [--short-s 60] [--json]

Recordings: real English speech (the clips of bench/speech.py) in runs of a few clips with short pauses,
long stretches of room tone (pink noise at about -60 dBFS) between the runs, written as 16 kHz FLAC by ffmpeg
from a concat list (the recording never exists in Python memory); made once into the cache.

Each figure comes from a fresh Python process (`--child`) that runs the step's own code and reports its
wall time and its peak resident memory (VmHWM of that process; ffmpeg, a process of its own, decoding to a file,
and is not counted):

  chunk    audio.decode_to_wav, then pipeline.chunk_plan (levels, silences, plan) with the default settings
           (`silence` chunking), then audio.cut_chunks into a scratch folder;
  merge    the chunk results read back as pipeline.merge reads them, merge.merge_chunks with the plan's
           silences, the transcript serialised as JSON;
  publish  the transcript rendered in every format (formats.render).

Chunk results for merge: synthetic, as whisper-cli reports them: words of 0.2-0.5 s with timings, a few
pauses, segments of about a dozen words, on `fixed` chunks of 30 s that overlap by 6 s (every join is a splice:
the merge's most expensive case); the same generator for both lengths.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import corpus, speech, texts

LONG_S, SHORT_S = 6 * 3600.0, 60.0
GENERATOR_VERSION = 1
SHORT_PAUSES_S = (0.4, 0.7, 1.2)  # between the clips of a run
LONG_PAUSES_S = (8.0, 20.0, 45.0, 90.0)  # between runs
ROOM_TONE = "anoisesrc=color=pink:amplitude=0.003:sample_rate=16000"
STEPS = ("chunk", "merge", "publish")


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [bench.memory] {message}", file=sys.stderr, flush=True)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def recording(seconds: float, seed: int = 1) -> Path:
    """A recording of `seconds` of speech runs and long pauses as 16 kHz mono FLAC, made once into the cache."""
    folder = corpus.cache_root() / "memory" / f"v{GENERATOR_VERSION}"
    path = folder / f"speech-{seconds:.0f}s-{seed}.flac"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    say(f"generating {path.name}")
    speech.fetch()
    with tempfile.TemporaryDirectory(prefix="stt-bench-memory-") as tmp:
        parts = Path(tmp)
        clip_files = []
        for i, samples in enumerate(speech.clips()):
            clip_files.append(parts / f"clip-{i:03d}.wav")
            corpus.write_wav(clip_files[-1], samples)
        pauses = {s: parts / f"pause-{s:g}.wav" for s in (*SHORT_PAUSES_S, *LONG_PAUSES_S)}
        for s, pause in pauses.items():
            ffmpeg("-f", "lavfi", "-i", f"{ROOM_TONE}:duration={s}", "-ac", "1", "-c:a", "pcm_s16le", str(pause))
        lengths = {p: corpus.read_wav(p).size / speech.SR for p in [*clip_files, *pauses.values()]}
        rng, entries, total = random.Random(seed), [], 0.0
        while total < seconds:
            for _ in range(rng.randint(3, 12)):
                clip = rng.choice(clip_files)
                short = pauses[rng.choice(SHORT_PAUSES_S)]
                entries += [clip, short]
                total += lengths[clip] + lengths[short]
            entries.append(pauses[rng.choice(LONG_PAUSES_S)])
            total += lengths[entries[-1]]
        listing = parts / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in entries))
        partial = path.with_suffix(".part.flac")
        ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-t", f"{seconds:.3f}", "-ac", "1", "-ar", str(speech.SR), "-c:a", "flac",
               str(partial))
        partial.replace(path)
    return path


def chunk_results(seconds: float, folder: Path, seed: int = 1) -> Path:
    """Write synthetic whisper results of `seconds` of speech on fixed overlapping chunks, one file per chunk
    (as the transcribe step stores them), and plan.json with the pauses as silences; returns `folder`."""
    from stt.audio import plan_fixed_chunks

    rng = random.Random(seed)
    vocabulary = " ".join(texts.MONOLOGUE).split()
    words, silences, t = [], [], 0.0
    while t < seconds:
        if rng.random() < 0.02:
            pause = rng.uniform(1.0, 3.0)
            silences.append((round(t + 0.05, 3), round(t + pause - 0.05, 3)))
            t += pause
        length = rng.uniform(0.2, 0.5)
        words.append((t, min(t + length, seconds), vocabulary[len(words) % len(vocabulary)]))
        t += length + rng.uniform(0.03, 0.15)
    folder.mkdir(parents=True, exist_ok=True)
    first = 0
    for plan in plan_fixed_chunks(seconds, 30.0, 6.0):
        while first < len(words) and words[first][0] < plan.start_s:
            first += 1
        inside, k = [], first
        while k < len(words) and words[k][1] <= plan.end_s:
            s, e, text = words[k]
            jitter = rng.uniform(-0.02, 0.02)
            inside.append({"start": round(max(0.0, s - plan.start_s + jitter), 3), "end": round(e - plan.start_s + jitter, 3), "text": text})
            k += 1
        segments = []
        for at in range(0, len(inside), 12):
            group = inside[at : at + 12]
            segments.append({"start": group[0]["start"], "end": group[-1]["end"], "text": " ".join(w["text"] for w in group), "words": group})
        result = {**plan.as_dict(), "language": "en", "segments": segments, "whisper_seconds": 1.0}
        (folder / f"chunk-{plan.index:05d}.json").write_text(json.dumps(result))
    (folder / "plan.json").write_text(json.dumps({"method": "fixed", "silences": silences}))
    return folder


# --- the measured steps, each run alone in a fresh process ------------------------------------------------


def run_chunk(source: Path, work: Path) -> dict:
    from stt import audio, pipeline
    from stt.config import Settings

    settings = Settings()
    started = time.monotonic()
    wav = audio.decode_to_wav(source, work / "decoded.wav", settings.limits.decode_timeout_s, max_s=settings.limits.max_duration_s)
    decoded_at = time.monotonic()
    decoded = audio.Recording.open(wav)
    plan = pipeline.chunk_plan(decoded, settings.chunking.method, settings)
    planned_at = time.monotonic()
    files = audio.cut_chunks(decoded, plan.chunks, work / "chunks")
    done = time.monotonic()
    return {"audio_s": round(decoded.duration_s, 1), "chunks": len(files), "silences": len(plan.silences),
            "decode_s": round(decoded_at - started, 2), "plan_s": round(planned_at - decoded_at, 2), "cut_s": round(done - planned_at, 2),
            "wall_s": round(done - started, 2)}


def run_merge(results: Path, work: Path) -> dict:
    from stt.merge import merge_chunks

    started = time.monotonic()
    chunks = [json.loads(path.read_text()) for path in sorted(results.glob("chunk-*.json"))]
    plan = json.loads((results / "plan.json").read_text())
    merged = merge_chunks(chunks, silences=plan["silences"])
    transcript = {"language": merged["language"], "text": merged["text"], "segments": merged["segments"], "chunks": merged["chunks"]}
    (work / "transcript.json").write_text(json.dumps(transcript, ensure_ascii=False))
    return {"chunks": len(chunks), "segments": len(merged["segments"]), "words": sum(len(s.get("words", [])) for s in merged["segments"]),
            "wall_s": round(time.monotonic() - started, 2)}


def run_publish(transcript: Path, work: Path) -> dict:
    from stt.formats import FORMATS, render

    started = time.monotonic()
    loaded = json.loads(transcript.read_text())
    sizes = {}
    for fmt in FORMATS:
        out = work / f"transcript.{fmt}"
        out.write_text(render(loaded, fmt))
        sizes[fmt] = out.stat().st_size
    return {"bytes": sizes, "wall_s": round(time.monotonic() - started, 2)}


def child(step: str, source: Path, work: Path) -> None:
    runs = {"chunk": run_chunk, "merge": run_merge, "publish": run_publish}
    from stt import procs

    figures = runs[step](source, work)
    print(json.dumps({**figures, "rss_mb": procs.own_peak_rss_mb()}))


def measure(step: str, source: Path, work: Path) -> dict:
    """Run one step in a fresh Python process; its figures."""
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "bench.memory", "--child", step, str(source), str(work)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"{step} on {source} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(long_s: float, short_s: float, scratch: Path) -> dict:
    report: dict = {"long_s": long_s, "short_s": short_s, "steps": {}}
    for label, seconds in (("short", short_s), ("long", long_s)):
        source = recording(seconds)
        work = scratch / label
        say(f"chunk step on {seconds:.0f}s ({source.stat().st_size / 1e6:.0f} MB FLAC)")
        report["steps"].setdefault("chunk", {})[label] = measure("chunk", source, work / "chunk")
        shutil.rmtree(work / "chunk", ignore_errors=True)
        results = chunk_results(seconds, work / "results")
        say(f"merge and publish on {seconds:.0f}s of chunk results")
        report["steps"].setdefault("merge", {})[label] = measure("merge", results, work / "merge")
        report["steps"].setdefault("publish", {})[label] = measure("publish", work / "merge" / "transcript.json", work / "publish")
        shutil.rmtree(work, ignore_errors=True)
    chunk = report["steps"]["chunk"]
    report["chunk_rss_ratio"] = round(chunk["long"]["rss_mb"] / chunk["short"]["rss_mb"], 2)
    report["acceptance"] = {"chunk_rss_mb_at_most_400": chunk["long"]["rss_mb"] <= 400, "chunk_rss_ratio_at_most_1.5": report["chunk_rss_ratio"] <= 1.5}
    return report


def table(report: dict) -> str:
    rows = ["| step | recording | wall time | peak RSS | detail |", "|---|---|---|---|---|"]
    for step, runs in report["steps"].items():
        for label in ("short", "long"):
            r = runs[label]
            detail = {"chunk": lambda: f"{r['chunks']} chunks, {r['silences']} silences; decode {r['decode_s']} s, plan {r['plan_s']} s, cut {r['cut_s']} s",
                      "merge": lambda: f"{r['chunks']} chunk results → {r['segments']} segments, {r['words']} words",
                      "publish": lambda: ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in r["bytes"].items())}[step]()
            rows.append(f"| {step} | {report[label + '_s'] / 60:g} min | {r['wall_s']:.2f} s | {r['rss_mb']:.0f} MB | {detail} |")
    rows.append(f"\nchunk step peak RSS, long / short: {report['chunk_rss_ratio']}x")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-s", type=float, default=LONG_S, help="length of the long recording (default 6 hours)")
    parser.add_argument("--short-s", type=float, default=SHORT_S, help="length of the short recording (default 1 minute)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "INPUT", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, source, work = args.child
        child(step, Path(source), Path(work))
        return 0
    with tempfile.TemporaryDirectory(prefix="stt-bench-memory-") as tmp:
        report = bench(args.long_s, args.short_s, Path(tmp))
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
