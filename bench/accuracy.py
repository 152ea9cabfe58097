"""Accuracy benchmark: the pipeline's chunk → transcribe → merge against whisper-cli on the whole file.

    python -m bench.accuracy [--json] [--model base] [--chunking silence,fixed] [--files a,b] [--seeds 0,1,2] [--prompt TEXT] [--manifest PATH]

For every audio of the manifest (default: the generated corpus, bench/corpus.py), once per sampling seed: word
error rate (jiwer, both sides as `scoring_text` makes them; character error rate too for Vietnamese) of (a) the pipeline's steps —
the same code the DAG runs, on file:// storage, without Airflow — for each chunking method, and (b)
`whisper-cli` on the whole file with the same model and decoding flags. Also counted:
- silence words: transcribed words lying entirely outside the spans where speech really is (the
  generator knows them); on the silence-only and noise-only files every word counts;
- join duplicates / losses: within JOIN_WINDOW_S of every join (the cut between two chunks, or where
  the merge spliced two overlapping ones), words inserted that repeat a reference word next to them,
  and reference words that are missing — unless whisper on the whole file made the same error there
  (then it is a recognition error, not the join's).
Settings come from the environment like the pipeline's (STT_CHUNK_*, STT_SILENCE_*).
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import json
import os
import shutil
import statistics
import string
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import corpus
from stt.text import normalise as normalise_text

JOIN_WINDOW_S = 2.0
SPEECH_MARGIN_S = 0.5
SEED_ENV = "WHISPER_SAMPLING_SEED"  # the seed of whisper's sampling decoders (whisper/patches)
COUNTS = ("silence_words", "join_duplicates", "join_losses", "reference_words_removed", "merge_dropped_words", "heard_again_words")


LETTER_WORDS = ("a", "i")  # single letters that are words of their own


def letter_runs(tokens: list[str]) -> list[tuple[int, int]]:
    """[start, end) of each run of two or more letters said one by one ("m f a", "n a"): an acronym, which
    whisper may as well write as one word ("MFA"). "a" and "i" at a run's edges stay words ("in n a i think");
    letters with diacritics (Vietnamese syllables such as "ở") are never letters said one by one."""
    runs, k = [], 0
    while k < len(tokens):
        end = k
        while end < len(tokens) and len(tokens[end]) == 1 and tokens[end] in string.ascii_lowercase:
            end += 1
        start, stop = k, end
        while start < stop and tokens[start] in LETTER_WORDS:
            start += 1
        while stop > start and tokens[stop - 1] == "i":
            stop -= 1
        if stop - start >= 2:
            runs.append((start, stop))
        k = max(end, k + 1)
    return runs


def joined_letters(tokens: list[str]) -> list[str]:
    """`tokens` with each run of letters said one by one (`letter_runs`) as one word: "m f a" and "mfa" score alike."""
    out, at = [], 0
    for start, stop in letter_runs(tokens):
        out.extend(tokens[at:start])
        out.append("".join(tokens[start:stop]))
        at = stop
    return out + tokens[at:]


def normalise(text: str) -> str:
    """Words as joins and times are checked: `stt.text.normalise` without fillers (uh, um), letters said one
    by one as one word (`joined_letters`)."""
    return " ".join(joined_letters(normalise_text(text, drop_fillers=True).split()))


@functools.cache
def _english_normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def scoring_text(text: str, language: str) -> str:
    """A text as error rates are scored: English by Whisper's English normaliser (one spelling, "gonna" as
    "going to", numbers as digits, no fillers or annotations), other languages by `normalise` (diacritics kept);
    letters said one by one as one word in both (`joined_letters`)."""
    if language == "en":
        return " ".join(joined_letters(_english_normaliser()(text).split()))
    return normalise(text)


CLOSERS = {"(": ")", "[": "]", "*": "*", "♪": "♪"}


def timed_words(segments: list[dict]) -> list[tuple[str, float, float]]:
    """Normalised words with times: from each segment's words when timed, else spread over the segment.
    Annotations spread over several words, such as "(wind", "howling)", are left out as `normalise` does."""
    out = []
    for seg in segments:
        if not seg.get("words"):
            out.extend((token, float(seg["start"]), float(seg["end"])) for token in normalise(seg["text"]).split())
            continue
        closer = None
        for item in seg["words"]:
            text = item["text"].strip()
            if closer is None and text[:1] in CLOSERS:
                closer = CLOSERS[text[0]]
                text = text[1:]
            if closer is not None:
                if text.rstrip(".,!?;:").endswith(closer):
                    closer = None
                continue
            for token in normalise(item["text"]).split():
                out.append((token, float(item["start"]), float(item["end"])))
    for start, stop in reversed(letter_runs([token for token, *_ in out])):  # letters whisper wrote as words of their own
        out[start:stop] = [("".join(token for token, *_ in out[start:stop]), out[start][1], out[stop - 1][2])]
    return out


class NullStore:
    """Stands in for the job store: the benchmark records nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: True

    def get(self, job_id):
        return None


def run_pipeline(path: Path, *, language: str, model: str, method: str, root: Path, prompt: str = "") -> tuple[dict, float]:
    """The DAG's chunk → transcribe (each batch of chunks) → merge, on a copy of `path` in a file:// storage root."""
    from stt import pipeline
    from stt.config import Settings

    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    source = inbox / path.name
    shutil.copyfile(path, source)
    settings = Settings.from_env().updated(storage={"local_root": root, "scratch_dir": root / "scratch"})
    job = {"job_id": f"bench-{path.stem}-{method}", "source": f"file://{source}", "language": language, "model": model,
           "formats": [], "duration_s": 0.0, "size_bytes": source.stat().st_size, "chunking": method, "prompt": prompt}
    store = NullStore()
    started = time.monotonic()
    planned = pipeline.chunk(job, settings=settings, store=store)
    job["duration_s"] = max(ref["end_s"] for batch in planned for ref in batch["chunks"])
    # batches in parallel, as the DAG's mapped tasks run: as many at once as the cores allow
    with ThreadPoolExecutor(max_workers=settings.whisper.lanes()) as pool:
        results = list(pool.map(lambda batch: pipeline.transcribe(job, batch, settings=settings, store=store), planned))
    merged = pipeline.merge(job, results, settings=settings, store=store)
    seconds = time.monotonic() - started
    transcript = json.loads(Path(merged["transcript_uri"].removeprefix("file://")).read_text())
    pipeline.cleanup(job["job_id"], job["source"], settings)
    return transcript, seconds


def run_whole_file(path: Path, *, language: str, model: str, root: Path, fresh: bool = False, prompt: str = "") -> tuple[dict, float]:
    """whisper-cli once on the whole file, same model, threads and decoding flags as the pipeline.

    Its result only depends on the audio, the binary, the model and the flags, so it is cached (keyed by
    all four) under $STT_CACHE_DIR/bench/: re-running the benchmark after a pipeline change is quicker."""
    from stt import whisper
    from stt.config import Settings

    settings = Settings.from_env()
    model_path = settings.whisper.model_path(model)
    args = whisper.decode_args(model, settings.whisper.word_timing, prompt)
    key = hashlib.sha256()
    key.update(path.read_bytes())
    for part in (settings.whisper.cli.resolve(), model_path.resolve()):
        info = part.stat()
        key.update(f"{part}:{info.st_size}:{info.st_mtime_ns}".encode())
    key.update(json.dumps([language, settings.whisper.threads, *args, os.environ.get(SEED_ENV, "")]).encode())
    cached = corpus.cache_root() / "bench" / f"whole-{key.hexdigest()[:24]}.json"
    if cached.is_file() and not fresh:
        data = json.loads(cached.read_text())
        return data["result"], data["seconds"]
    wav = root / "whole" / path.name
    wav.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, wav)
    duration = wav.stat().st_size / 32000
    run = whisper.transcribe(wav, cli=settings.whisper.cli, model_path=model_path,
                             language=whisper.whisper_language(model, language), threads=settings.whisper.threads,
                             timeout_s=settings.whisper.timeout(duration), extra_args=args)
    result = {"segments": run.segments, "language": run.language}
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"file": str(path), "model": model, "args": list(args), "result": result, "seconds": run.seconds}))
    return result, run.seconds


def error_counts(reference: str, text: str, language: str) -> dict:
    """Reference words and word errors of `text` (as `scoring_text` makes both), and WER; CER too for Vietnamese."""
    import jiwer

    ref, hyp = scoring_text(reference, language), scoring_text(text, language)
    out: dict = {"reference_words": len(ref.split()), "wer": None, "cer": None}
    if not ref:
        return out
    if not hyp:
        n = len(ref.split())
        return {**out, "wer": 1.0, "cer": 1.0 if language == "vi" else None, "deletions": n, "insertions": 0, "substitutions": 0}
    result = jiwer.process_words(ref, hyp)
    out.update(wer=round(result.wer, 4), insertions=result.insertions, deletions=result.deletions, substitutions=result.substitutions)
    out["cer"] = round(jiwer.cer(ref, hyp), 4) if language == "vi" else None
    return out


def score(reference: str, segments: list[dict], *, language: str) -> dict:
    """Error rates of `segments` against `reference` (`error_counts`), plus the word-by-word alignment of the
    timed words (`normalise`) for join and removal counts."""
    import jiwer

    words = timed_words(segments)
    out: dict = {"words": len(words), "timed": words,
                 **error_counts(reference, " ".join(seg["text"] for seg in segments), language)}
    hyp, ref = " ".join(w for w, *_ in words), normalise(reference)
    if not ref:
        return {**out, "alignment": None}
    if not hyp:
        return {**out, "alignment": []}
    out["alignment"], out["ref_words"] = jiwer.process_words(ref, hyp).alignments[0], ref.split()
    return out


def words_on_silence(words: list[tuple[str, float, float]], speech: list[list[float]]) -> list[list]:
    """[word, start, end] of the words lying entirely outside every true speech span (widened by SPEECH_MARGIN_S)."""
    spans = [(s - SPEECH_MARGIN_S, e + SPEECH_MARGIN_S) for s, e in speech]
    return [[word, start, end] for word, start, end in words if not any(start < e and end > s for s, e in spans)]


def join_windows(chunks: list[dict]) -> list[tuple[float, float]]:
    """±JOIN_WINDOW_S around each join: where overlapping neighbours were spliced (the chunk map's `join.at`),
    else the cut between them (a silence, possibly shortened: from the end of one to the start of the next)."""
    windows = []
    for prev, nxt in zip(chunks, chunks[1:]):
        if "join" in nxt:
            lo = hi = nxt["join"]["at"]
        else:
            lo, hi = min(nxt["start"], prev["end"]), max(nxt["start"], prev["end"])
        windows.append((lo - JOIN_WINDOW_S, hi + JOIN_WINDOW_S))
    return windows


def join_errors(scored: dict, windows: list[tuple[float, float]], control: dict | None = None,
                found: list | None = None) -> tuple[int, int]:
    """(duplicates, losses) at the joins: inserted words repeating a nearby reference word, and deleted
    reference words. With `control` (the whole-file run scored on the same reference), errors it makes at
    the same reference words too are recognition errors, not the joins' doing, and are not counted.
    `found` gets ["duplicate", word, time] of each duplicate and ["lost", word, time, whole-file word] of each
    loss, the last what whisper wrote for that reference word on the whole file (None: nothing aligned)."""
    alignment = scored.get("alignment")
    if not alignment or not windows:
        return 0, 0
    words, ref = scored["timed"], scored["ref_words"]
    control_deleted: set[int] = set()
    control_inserted: set[int] = set()
    control_read: dict[int, str] = {}  # reference word index -> the word whole-file whisper wrote for it
    for chunk in (control or {}).get("alignment") or []:
        if chunk.type == "delete":
            control_deleted.update(range(chunk.ref_start_idx, chunk.ref_end_idx))
        elif chunk.type == "insert":
            control_inserted.add(chunk.ref_start_idx)
        else:  # equal or substitute: word for word
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                control_read[chunk.ref_start_idx + k] = control["timed"][chunk.hyp_start_idx + k][0]

    def in_window(t: float) -> bool:
        return any(lo <= t <= hi for lo, hi in windows)

    duplicates = losses = 0
    for chunk in alignment:
        if chunk.type == "insert" and chunk.ref_start_idx not in control_inserted:
            nearby = set(ref[max(0, chunk.ref_start_idx - 4) : chunk.ref_start_idx + 4])
            for k in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                token, start, end = words[k]
                if token in nearby and in_window((start + end) / 2):
                    duplicates += 1
                    if found is not None:
                        found.append(["duplicate", token, round(start, 2)])
        elif chunk.type == "delete":
            before = words[chunk.hyp_start_idx - 1][2] if chunk.hyp_start_idx > 0 else 0.0
            after = words[chunk.hyp_start_idx][1] if chunk.hyp_start_idx < len(words) else before
            if in_window(before) or in_window(after) or any(before <= lo and hi <= after for lo, hi in windows):
                lost = [r for r in range(chunk.ref_start_idx, chunk.ref_end_idx) if r not in control_deleted]
                losses += len(lost)
                if found is not None:
                    found.extend(["lost", ref[r], round(before, 2), control_read.get(r)] for r in lost)
    return duplicates, losses


def removed_spans(chunks: list[dict], duration_s: float) -> list[tuple[float, float]]:
    """Recording time no chunk sent to whisper: shortened silences, and chunks planned silent."""
    kept = sorted((float(a), float(b)) for c in chunks if not c.get("silent") for a, b in (c.get("pieces") or [[c["start"], c["end"]]]))
    gaps, at = [], 0.0
    for a, b in kept:
        if a > at:
            gaps.append((at, a))
        at = max(at, b)
    if at < duration_s:
        gaps.append((at, duration_s))
    return [(a, b) for a, b in gaps if b - a > 1e-3]


def written_word_times(scored: dict) -> dict[int, float]:
    """Reference word index → the middle of the word a run wrote in its place (equal or substituted)."""
    known: dict[int, float] = {}
    for chunk in scored.get("alignment") or []:
        if chunk.type in ("equal", "substitute"):
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                _, start, end = scored["timed"][chunk.hyp_start_idx + k]
                known[chunk.ref_start_idx + k] = (start + end) / 2
    return known


def aligned_word_times(scored: dict) -> list[float] | None:
    """A time for every reference word, from a run scored against it: the middle of the word whisper wrote in
    its place (equal or substituted), and for words it left out, a time interpolated between its neighbours'."""
    ref = scored.get("ref_words")
    known = written_word_times(scored)
    if not known or not ref:
        return None
    indices = sorted(known)
    times = []
    for i in range(len(ref)):
        if i in known:
            times.append(known[i])
            continue
        at = bisect.bisect_left(indices, i)
        if at == 0 or at == len(indices):  # before the first or after the last timed word
            times.append(known[indices[min(at, len(indices) - 1)]])
            continue
        lo, hi = indices[at - 1], indices[at]
        times.append(known[lo] + (known[hi] - known[lo]) * (i - lo) / (hi - lo))
    return times


def _reference_word_times(entry: dict, whole_scored: dict | None = None, heard_scored: dict | None = None) -> list[tuple[float, bool]]:
    """A time for every reference word, inside the utterance it belongs to, and whether `heard_scored` heard it:
    where that run (the pipeline's) wrote a word in its place, that word's time — it heard the word there, so
    that audio was not removed; else where whole-file whisper did (`aligned_word_times`, whose DTW times can drift a second into a
    pause); otherwise spread evenly over the utterance (the corpus knows utterances, not words)."""
    speech = entry["speech"]
    if entry.get("utterances"):
        counts = [len(normalise(u).split()) for u in entry["utterances"]]
    else:  # one text for all utterances: its words divided by utterance length
        total, lengths = len(normalise(entry["reference"]).split()), [e - s for s, e in speech]
        counts = [round(total * length / max(sum(lengths), 1e-9)) for length in lengths]
    spans, even = [], []
    for (start, end), n in zip(speech, counts):
        for k in range(n):
            spans.append((start, end))
            even.append(start + (k + 0.5) * (end - start) / max(n, 1))
    aligned = aligned_word_times(whole_scored or {})
    if aligned is None or len(aligned) != len(even):
        aligned = even
    heard = written_word_times(heard_scored or {}) if len((heard_scored or {}).get("ref_words") or ()) == len(even) else {}

    def inside(t: float | None, span: tuple[float, float]) -> bool:
        return t is not None and span[0] - SPEECH_MARGIN_S <= t <= span[1] + SPEECH_MARGIN_S

    return [(heard[i], True) if inside(heard.get(i), span) else (t if inside(t, span) else e, False)
            for i, (t, e, span) in enumerate(zip(aligned, even, spans))]


def reference_word_times(entry: dict, whole_scored: dict | None = None, heard_scored: dict | None = None) -> list[float]:
    """A time for every reference word (`_reference_word_times`)."""
    return [t for t, _ in _reference_word_times(entry, whole_scored, heard_scored)]


def reference_words_removed(entry: dict, removed: list[tuple[float, float]], whole_scored: dict | None = None,
                            heard_scored: dict | None = None) -> int:
    """Reference words whose time (`reference_word_times`) falls inside removed audio, except those `heard_scored`
    wrote a word for: a word whisper wrote across a shortened silence has its middle in the removed part."""
    return sum(1 for t, heard in _reference_word_times(entry, whole_scored, heard_scored)
               if not heard and any(a <= t < b for a, b in removed))


def speech_onsets(segments: list[dict], speech: list[list[float]]) -> list[float]:
    """For each true utterance, |start of the segment overlapping it most − where it really starts|."""
    errors = []
    for start, end in speech:
        overlaps = [(min(end, s["end"]) - max(start, s["start"]), s["start"]) for s in segments]
        best = max(overlaps, default=(0.0, 0.0))
        if best[0] > 0:
            errors.append(round(abs(best[1] - start), 3))
    return errors


def bench_file(entry: dict, *, model: str, methods: list[str], root: Path, log, fresh: bool = False, prompt: str = "") -> dict:
    path, language = Path(entry["path"]), entry["language"]
    whole, whole_s = run_whole_file(path, language=language, model=model, root=root, fresh=fresh, prompt=prompt)
    whole_scored = score(entry["reference"], whole["segments"], language=language)
    row = {
        "name": entry["name"],
        "language": language,
        "kind": entry.get("kind", ""),
        "duration_s": entry["duration_s"],
        "reference_words": whole_scored["reference_words"],
        "whole_file_wer": whole_scored["wer"],
        "whole_file_cer": whole_scored["cer"],
        "whole_file_silence_words": len(words_on_silence(whole_scored["timed"], entry["speech"])),
        "whole_file_seconds": round(whole_s, 1),
        "whole_file_onset_errors_s": speech_onsets(whole["segments"], entry["speech"]) if entry.get("kind", "").startswith("utterances") else [],
        "whole_file_text": " ".join(s["text"] for s in whole["segments"]),
        "by_chunking": {},
    }
    log(f"{entry['name']} (seed {os.environ.get(SEED_ENV, '0')}): whole file WER {whole_scored['wer']} in {whole_s:.1f}s")
    for method in methods:
        transcript, seconds = run_pipeline(path, language=language, model=model, method=method, root=root / method, prompt=prompt)
        scored = score(entry["reference"], transcript["segments"], language=language)
        join_words: list = []
        on_silence = words_on_silence(scored["timed"], entry["speech"])
        duplicates, losses = join_errors(scored, join_windows(transcript["chunks"]), control=whole_scored, found=join_words)
        onsets = speech_onsets(transcript["segments"], entry["speech"]) if entry.get("kind", "").startswith("utterances") else []
        removed = removed_spans(transcript["chunks"], entry["duration_s"])
        row["by_chunking"][method] = {
            "removed_s": round(sum(b - a for a, b in removed), 2),
            "reference_words_removed": reference_words_removed(entry, removed, whole_scored, scored),
            "merge_dropped_words": sum(((transcript.get("removed") or {}).get("words") or {}).values()),
            "heard_again_words": sum(words for c in transcript["chunks"] for *_, words in c.get("heard_again", [])),
            "pipeline_wer": scored["wer"],
            "pipeline_cer": scored["cer"],
            "silence_words": len(on_silence),
            "silence_word_times": on_silence,
            "join_duplicates": duplicates,
            "join_losses": losses,
            "join_words": join_words,
            "chunks": len(transcript["chunks"]),
            "cuts": [c["cut"] for c in transcript["chunks"][:-1]],
            "onset_errors_s": onsets,
            "seconds": round(seconds, 1),
            "text": transcript["text"],
        }
        log(f"{entry['name']} (seed {os.environ.get(SEED_ENV, '0')}): {method} WER {scored['wer']} ({len(transcript['chunks'])} chunks) in {seconds:.1f}s")
    return _headed(row, methods)


def _headed(row: dict, methods: list[str]) -> dict:
    """The row led by its name and the first chunking method's main figures."""
    first = row["by_chunking"][methods[0]]
    head = {**{k: row[k] for k in ("name", "language", "duration_s")}, "chunking": methods[0],
            **{k: first[k] for k in ("pipeline_wer", "silence_words", "join_duplicates", "join_losses")}}
    return {**head, **{k: v for k, v in row.items() if k not in head}}


def paired_difference(pipeline: list, whole: list) -> dict | None:
    """Pipeline minus whole-file WER over the seeds: the mean and its standard error (the seeds' spread over
    the square root of their number), so a difference can be told from what the draws do."""
    if None in pipeline or None in whole or len(pipeline) < 2:
        return None
    diffs = [p - w for p, w in zip(pipeline, whole)]
    return {"mean": round(statistics.fmean(diffs), 4), "standard_error": round(statistics.stdev(diffs) / len(diffs) ** 0.5, 4)}


def across_seeds(runs: dict[int, list[dict]], methods: list[str]) -> list[dict]:
    """One row per file from runs with different sampling seeds: WER and CER are the means over the seeds (each
    seed's WERs under `seeds`), pipeline minus whole file with its standard error (`minus_whole`), counts the
    largest any seed gave, texts and cuts the first seed's."""
    if len(runs) == 1:
        return next(iter(runs.values()))

    def mean(values: list) -> float | None:
        return None if None in values else round(sum(values) / len(values), 4)

    out = []
    for rows in zip(*runs.values()):
        row = json.loads(json.dumps(rows[0]))
        row["seeds"] = {str(seed): {"whole_file_wer": r["whole_file_wer"], **{m: r["by_chunking"][m]["pipeline_wer"] for m in methods},
                                    "join_words": {m: r["by_chunking"][m]["join_words"] for m in methods},
                                    "silence_word_times": {m: r["by_chunking"][m]["silence_word_times"] for m in methods}}
                        for seed, r in zip(runs, rows)}
        for key in ("whole_file_wer", "whole_file_cer"):
            row[key] = mean([r[key] for r in rows])
        row["whole_file_silence_words"] = max(r["whole_file_silence_words"] for r in rows)
        for m in methods:
            by = [r["by_chunking"][m] for r in rows]
            for key in ("pipeline_wer", "pipeline_cer"):
                row["by_chunking"][m][key] = mean([b[key] for b in by])
            row["by_chunking"][m]["minus_whole"] = paired_difference([b["pipeline_wer"] for b in by], [r["whole_file_wer"] for r in rows])
            for key in COUNTS:
                row["by_chunking"][m][key] = max(b[key] for b in by)
        out.append(_headed(row, methods))
    return out


def table(report: dict) -> str:
    methods = report["chunking"]
    head = ["file", "dur s", "whole WER", *[f"{m} WER" for m in methods], "silence words (whole/" + "/".join(methods) + ")",
            *[f"{m} join dup/lost" for m in methods], *[f"{m} removed s / ref words in it / merge dropped / heard again" for m in methods]]
    seeds = [str(seed) for seed in report.get("seeds", [0])]
    if len(seeds) > 1:
        head += [f"{m} − whole (standard error)" for m in methods]
        head.append("WER by seed " + ", ".join(seeds) + " (whole/" + "/".join(methods) + ")")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pct(value, cer=None):
        if value is None:
            return "—"
        return f"{100 * value:.1f}%" + (f" (CER {100 * cer:.1f}%)" if cer is not None else "")

    for row in report["files"]:
        by = row["by_chunking"]
        cells = [row["name"], f"{row['duration_s']:.0f}", pct(row["whole_file_wer"], row["whole_file_cer"]),
                 *[pct(by[m]["pipeline_wer"], by[m]["pipeline_cer"]) for m in methods],
                 "/".join([str(row["whole_file_silence_words"]), *[str(by[m]["silence_words"]) for m in methods]]),
                 *[f"{by[m]['join_duplicates']}/{by[m]['join_losses']}" for m in methods],
                 *[f"{by[m]['removed_s']:.1f} / {by[m]['reference_words_removed']} / {by[m]['merge_dropped_words']} / {by[m]['heard_again_words']}"
                   for m in methods]]
        if len(seeds) > 1:
            cells += [f"{100 * d['mean']:+.1f} ({100 * d['standard_error']:.1f})" if (d := by[m].get("minus_whole")) else "—" for m in methods]
            cells.append(", ".join("/".join(pct(row["seeds"][seed][key]) for key in ("whole_file_wer", *methods)) for seed in seeds))
        lines.append("| " + " | ".join(cells) + " |")
    for m in methods:
        pooled = report["pooled"][m]
        generated = report["pooled_generated"][m]
        lines.append(f"\npooled WER over the real-speech files ({m}): pipeline {pct(pooled['pipeline'])}, whole file {pct(pooled['whole_file'])}"
                     f" (ratio {pooled['ratio']}); over the generated English speech: pipeline {pct(generated['pipeline'])},"
                     f" whole file {pct(generated['whole_file'])} (ratio {generated['ratio']})")
    return "\n".join(lines)


def pooled_wer(rows: list[dict], methods: list[str], real: bool = True) -> dict:
    """WER over all words of the real-speech English files together (`real=False`: the generated English
    speech, espeak-ng), pipeline and whole file."""
    def wanted(r: dict) -> bool:
        if real:
            return r["name"].startswith("real_")
        return not r["name"].startswith("real_") and not r.get("kind", "").startswith("real speech")  # not jfk.wav

    chosen = [r for r in rows if wanted(r) and r["language"] == "en" and r["whole_file_wer"] is not None]
    out = {}
    for m in methods:
        errors = {"pipeline": 0.0, "whole_file": 0.0}
        words = 0
        for r in chosen:
            n = r["reference_words"]
            words += n
            errors["pipeline"] += r["by_chunking"][m]["pipeline_wer"] * n
            errors["whole_file"] += r["whole_file_wer"] * n
        pipeline, whole = (errors["pipeline"] / words, errors["whole_file"] / words) if words else (None, None)
        out[m] = {"pipeline": pipeline, "whole_file": whole, "ratio": round(pipeline / whole, 3) if words and whole else None}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--model", default="base")
    parser.add_argument("--chunking", default="silence,fixed", help="comma-separated: silence, fixed, vad")
    parser.add_argument("--files", default="", help="comma-separated names (default: all)")
    parser.add_argument("--manifest", type=Path, help="a manifest.json like the corpus's (default: generate the corpus)")
    parser.add_argument("--fresh", action="store_true", help="re-run whisper-cli on the whole files even if cached")
    parser.add_argument("--seeds", default="0", help="comma-separated sampling seeds: each file is run once per seed "
                        "and scored by the mean (whisper samples where its beam fails; the draws move a file's WER)")
    parser.add_argument("--prompt", default="", help="whisper's prompt for every file, on both sides (the job parameter `prompt`)")
    parser.add_argument("--verbose", action="store_true", help="show the pipeline's log")
    args = parser.parse_args(argv)

    import logging

    from stt import whisper
    from stt.config import Settings

    if not args.verbose:
        logging.getLogger("stt").setLevel(logging.WARNING)
    entries = corpus.load(args.manifest)
    if args.files:
        wanted = set(args.files.split(","))
        entries = [e for e in entries if e["name"] in wanted]
    methods = [m for m in args.chunking.split(",") if m]
    settings = Settings.from_env()
    prompt = whisper.check_prompt(args.prompt)
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    started = time.monotonic()
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    runs = {}
    for seed in seeds:
        os.environ[SEED_ENV] = str(seed)
        with tempfile.TemporaryDirectory(prefix="stt-bench-") as tmp:
            runs[seed] = [bench_file(e, model=args.model, methods=methods, root=Path(tmp) / e["name"], log=log, fresh=args.fresh, prompt=prompt)
                          for e in entries]
    rows = across_seeds(runs, methods)
    report = {
        "model": args.model,
        "chunking": methods,
        "decode_args": list(whisper.decode_args(args.model, settings.whisper.word_timing, prompt)),
        "settings": {"chunk_seconds": settings.chunking.seconds, "chunk_min_s": settings.chunking.min_s, "chunk_max_s": settings.chunking.max_s,
                     "chunk_overlap_s": settings.chunking.overlap_s, "silence_min_s": settings.chunking.silence_min_s,
                     "silence_below_speech_db": settings.chunking.silence_below_speech_db, "whisper_threads": settings.whisper.threads,
                     "word_timing": settings.whisper.word_timing},
        "seeds": seeds,
        "seconds": round(time.monotonic() - started, 1),
        "files": rows,
        "pooled": pooled_wer(rows, methods),
        "pooled_generated": pooled_wer(rows, methods, real=False),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(table(report))
        print(f"\nmodel {args.model}, whisper flags {' '.join(whisper.decode_args(args.model, settings.whisper.word_timing, prompt)) or '(defaults)'}, {report['seconds']:.0f}s in all")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("STT_SCRATCH_DIR", tempfile.gettempdir() + "/stt-bench-scratch")
    sys.exit(main())
