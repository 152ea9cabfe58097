"""Reduced audio context benchmark: whisper-cli's `-ac N` (the encoder's context in 20 ms frames, 1500 for 30 s)
against the full context, on short real recordings.

    python -m bench.audio_context [--json] [--model base] [--modes dtw,tokens] [--variants full,+2,+5,+10,768]
                                  [--vietnamese 5,8,11,14,17,20] [--limit N]

Clips: the real English clips of bench.speech (their manifest references) and a few Vietnamese recordings made by
bench.corpus.vietnamese_said (the sentences said are the reference). Each clip is decoded by a whisper-cli process
of its own (-t 1, told the language, the pipeline's decode flags for each word timing), once per variant:
`full` (no -ac); `+S` (the clip's length plus S seconds, in frames, rounded up to a multiple of 64; full when that
reaches 1500); a number (that fixed -ac). Per word timing and variant: pooled WER of the English clips (all; the MFA
test clips `mfa_*` of odd speech, a few words each with fillers, laughter, falsetto; the others) and CER of the
Vietnamese ones (scored as bench.accuracy scores), clips whose normalised text differs from the full context's and
clips scored worse or better, empty, repeating and crashed runs, whisper CPU seconds (user+sys of the processes) and
encoder seconds (whisper's own timing), words timed past the clip's end, and the word time errors against the MFA
TextGrid references (bench.word_times) of the words matched with both this variant and the full context.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

from bench import accuracy, corpus, speech, word_times
from bench.speed import timed_process
from stt import whisper

FULL_CTX = 1500  # whisper's encoder positions: 30 s of 20 ms frames
FRAMES_PER_S = 50
CTX_STEP = 64
LOOP_REPEATS = 4  # one or two words said this many times in a row is a loop
LATE_S = 0.5  # a word ending this long after the clip's end is timed past it
_ENCODE = re.compile(r"encode time =\s*([0-9.]+) ms")


def context(variant: str, seconds: float) -> int | None:
    """The -ac value of a variant for a clip of `seconds` (None: the full context)."""
    if variant == "full":
        return None
    if variant.startswith("+"):
        frames = math.ceil((seconds + float(variant[1:])) * FRAMES_PER_S / CTX_STEP) * CTX_STEP
        return None if frames >= FULL_CTX else frames
    return int(variant)


def run_cli(wav: Path, *, language: str, cli: Path, model_path: Path, args: tuple[str, ...], ctx: int | None, threads: int) -> dict:
    """One whisper-cli process on `wav` (its timings printed, so no -np): segments, CPU and encoder seconds."""
    out = wav.with_name(f"{wav.stem}-{ctx or 'full'}")
    cmd = [str(cli), "-m", str(model_path), "-l", language, "-t", str(threads), "-ojf", *args,
           *(("-ac", str(ctx)) if ctx else ()), "-f", str(wav), "-of", str(out)]
    out.with_suffix(".json").unlink(missing_ok=True)
    returncode, figures, log = timed_process(cmd)
    encode = _ENCODE.search(log)
    run = {"ac": ctx, "returncode": returncode, "cpu_s": figures["cpu_s"], "wall_s": figures["wall_s"],
           "encode_s": round(float(encode.group(1)) / 1000, 3) if encode else None, "segments": []}
    if returncode == 0 and out.with_suffix(".json").is_file():
        run["segments"] = whisper.parse_output(out.with_suffix(".json").read_bytes()).segments
    else:
        run["error"] = " | ".join(log.strip().splitlines()[-3:])
    return run


def repeats(words: list[str]) -> dict[int, int]:
    """For each length n, the most times a run of n words is said in a row (only n with two or more)."""
    most: dict[int, int] = {}
    for n in range(1, len(words) // 2 + 1):
        for start in range(len(words) - 2 * n + 1):
            count = 1
            while words[start + count * n : start + (count + 1) * n] == words[start : start + n]:
                count += 1
            if count > 1:
                most[n] = max(most.get(n, 0), count)
    return most


def looping(words: list[str], reference: list[str]) -> bool:
    """Whether whisper repeated itself more than the reference does: LOOP_REPEATS times the same 1 or 2 words in a
    row, or 3 words or more twice in a row (a sentence said again); or over twice the reference's words (and 5 more)."""
    said = repeats(reference)
    return (any(count >= (2 if n >= 3 else LOOP_REPEATS) and count > said.get(n, 1) for n, count in repeats(words).items())
            or len(words) > 2 * len(reference) + 5)


def vietnamese_clips(lengths: list[float], work: Path) -> list[dict]:
    """Vietnamese recordings of about these lengths (bench.corpus.vietnamese_said, seeds 1, 2, …) as WAVs."""
    rows = []
    work.mkdir(parents=True, exist_ok=True)
    for seed, seconds in enumerate(lengths, start=1):
        samples, said = corpus.vietnamese_said(seconds, seed, work)
        wav = work / f"vi_{seconds:g}s" / f"vi_{seconds:g}s.wav"
        wav.parent.mkdir(parents=True)
        corpus.write_wav(wav, samples)
        rows.append({"name": wav.stem, "wav": wav, "seconds": round(len(samples) / speech.SR, 3), "language": "vi", "reference": said})
    return rows


def english_clips(work: Path, limit: int) -> list[dict]:
    """The real English clips of bench.speech as 16 kHz WAVs (the first `limit`, 0: all)."""
    speech.fetch()
    rows = []
    for row in speech.entries()[: limit or None]:
        name = Path(row["file"]).stem
        wav = work / name / f"{name}.wav"
        wav.parent.mkdir(parents=True)
        speech.ffmpeg("-i", str(row["path"]), "-ac", "1", "-ar", str(speech.SR), "-c:a", "pcm_s16le", str(wav))
        rows.append({"name": name, "file": row["file"], "wav": wav, "seconds": row["seconds"], "language": row["language"],
                     "reference": row["reference"]})
    return rows


def bench_clip(clip: dict, *, model: str, cli: Path, model_path: Path, modes: list[str], variants: list[str], threads: int) -> dict:
    """Every word timing × variant of one clip; a variant whose context is the full one reuses the full run."""
    out = {}
    for mode in modes:
        args = whisper.decode_args(model, mode)
        runs: dict[int | None, dict] = {}
        out[mode] = {}
        for variant in ["full", *[v for v in variants if v != "full"]]:
            ctx = context(variant, clip["seconds"])
            if ctx not in runs:
                runs[ctx] = run_cli(clip["wav"], language=whisper.whisper_language(model, clip["language"]), cli=cli, model_path=model_path,
                                    args=args, ctx=ctx, threads=threads)
            run = runs[ctx]
            words = accuracy.timed_words(run["segments"])
            scored = accuracy.score(clip["reference"], run["segments"], language=clip["language"])
            out[mode][variant] = {
                "ac": ctx, "crashed": run["returncode"] != 0, "error": run.get("error"), "cpu_s": run["cpu_s"], "wall_s": run["wall_s"],
                "encode_s": run["encode_s"], "wer": scored["wer"], "cer": scored["cer"], "timed": words,
                "text": " ".join(w for w, *_ in words),
                "late_words": sum(1 for _, _, end in words if end > clip["seconds"] + LATE_S),
            }
        print(f"{clip['name']} ({clip['seconds']:.1f}s) {mode}: " + ", ".join(
            f"{v} ac={r['ac'] or 'full'} {'CER' if r['cer'] is not None else 'WER'} {r['cer'] if r['cer'] is not None else r['wer']} cpu {r['cpu_s']:.1f}s" for v, r in out[mode].items()), file=sys.stderr)
    return out


def summarise(clips: list[dict], results: dict[str, dict], refs: dict, modes: list[str], variants: list[str]) -> list[dict]:
    """Per word timing and variant: the pooled figures over all clips."""
    rows = []
    for mode in modes:
        for variant in variants:
            row = {"word_timing": mode, "variant": variant, "changed_en": 0, "changed_vi": 0, "worse": 0, "better": 0, "empty": [],
                   "looping": [], "crashed": [],
                   "late_words": 0, "cpu_s": 0.0, "encode_s": 0.0, "wall_s": 0.0}
            errors = {key: [0.0, 0] for key in ("en", "en_mfa", "en_other", "vi")}
            timing_errors = []
            for clip in clips:
                run, full = results[clip["name"]][mode][variant], results[clip["name"]][mode]["full"]
                ref = accuracy.normalise(clip["reference"])
                lang = clip["language"]
                size = len(ref.split()) if lang == "en" else len(ref)
                score = run["wer"] if lang == "en" else run["cer"]
                groups = [lang, *(("en_mfa" if clip["name"].startswith("mfa_") else "en_other",) if lang == "en" else ())]
                for group in groups if score is not None else ():
                    errors[group][0] += score * size
                    errors[group][1] += size
                row[f"changed_{lang}"] += run["text"] != full["text"]
                baseline = full["wer"] if lang == "en" else full["cer"]
                if score is not None and baseline is not None:
                    row["worse"] += score > baseline
                    row["better"] += score < baseline
                words = run["text"].split()
                for key, hit in (("empty", not words and ref), ("looping", looping(words, ref.split())), ("crashed", run["crashed"])):
                    if hit:
                        row[key].append(clip["name"])
                row["late_words"] += run["late_words"]
                for key in ("cpu_s", "encode_s", "wall_s"):
                    row[key] += run[key] or 0.0
                if clip["name"] in refs:
                    mine = word_times.matched_errors(refs[clip["name"]], run["timed"])
                    base = word_times.matched_errors(refs[clip["name"]], full["timed"])
                    timing_errors.extend(mine[i] for i in sorted(set(mine) & set(base)))
            for key, group in (("wer_en", "en"), ("wer_en_mfa", "en_mfa"), ("wer_en_other", "en_other"), ("cer_vi", "vi")):
                row[key] = round(errors[group][0] / errors[group][1], 4) if errors[group][1] else None
            row["matched_words"] = len(timing_errors)
            row["start_error_s"] = word_times.summary([s for s, _ in timing_errors])
            row["end_error_s"] = word_times.summary([e for _, e in timing_errors])
            for key in ("cpu_s", "encode_s", "wall_s"):
                row[key] = round(row[key], 1)
            rows.append(row)
    return rows


def table(report: dict) -> str:
    """The summary as a Markdown table."""
    head = ["word timing", "variant", "EN WER (mfa_* / other clips)", "VI CER", "text changed (EN / VI)", "clips worse / better", "empty / repeating / crashed",
            "words past end", "word start / end error median, p90 (s)", "whisper CPU s", "encoder s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["summary"]:
        pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        s, e = r["start_error_s"], r["end_error_s"]
        lines.append(f"| {r['word_timing']} | {r['variant']} | {pct(r['wer_en'])} ({pct(r['wer_en_mfa'])} / {pct(r['wer_en_other'])}) | "
                     f"{pct(r['cer_vi'])} | "
                     f"{r['changed_en']} / {r['changed_vi']} | {r['worse']} / {r['better']} | {len(r['empty'])} / {len(r['looping'])} / {len(r['crashed'])} | "
                     f"{r['late_words']} | {s['median']}, {s['p90']} / {e['median']}, {e['p90']} | {r['cpu_s']} | {r['encode_s']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--model", default="base")
    parser.add_argument("--modes", default=",".join(whisper.WORD_TIMINGS), help="word timings, comma-separated")
    parser.add_argument("--variants", default="full,+2,+5,+10,768", help="full, +SECONDS of margin, or a fixed -ac; comma-separated")
    parser.add_argument("--vietnamese", default="5,8,11,14,17,20", help="lengths (s) of the Vietnamese clips; empty: none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N English clips (0: all)")
    args = parser.parse_args(argv)

    from stt.config import Settings

    settings = Settings.from_env().whisper
    cli, model_path = settings.cli, settings.model_path(args.model)
    modes = [m for m in args.modes.split(",") if m]
    variants = ["full", *[v for v in args.variants.split(",") if v and v != "full"]]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stt-audio-context-") as tmp:
        clips = english_clips(Path(tmp) / "en", args.limit)
        clips += vietnamese_clips([float(s) for s in args.vietnamese.split(",") if s], Path(tmp) / "vi") if args.vietnamese else []
        refs = word_times.references([{"file": c["file"]} for c in clips if "file" in c])
        results = {c["name"]: bench_clip(c, model=args.model, cli=cli, model_path=model_path, modes=modes, variants=variants, threads=args.threads)
                   for c in clips}
    summary = summarise(clips, results, refs, modes, variants)
    for clip in clips:
        for runs in results[clip["name"]].values():
            for run in runs.values():
                run.pop("timed")
    report = {"model": args.model, "threads": args.threads, "clips": len(clips), "english_clips": sum(c["language"] == "en" for c in clips),
              "clip_seconds": round(sum(c["seconds"] for c in clips), 1), "summary": summary,
              "by_clip": [{"name": c["name"], "language": c["language"], "seconds": c["seconds"], "runs": results[c["name"]]} for c in clips],
              "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
