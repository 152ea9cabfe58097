"""The mixed inbox of bench.speed: files such as users drop, with the words said in each.

24 files, about 20 minutes in all, from 2 s to nearly 4 minutes: real English speech (the clips of
bench/speech.py) and, one file in five, Vietnamese (espeak-ng `vi`); as WAV, MP3, M4A (AAC), FLAC and Ogg
Vorbis. Generated once into `$STT_CACHE_DIR/speed/inbox-v<INBOX_VERSION>/` with `manifest.json`; bump
INBOX_VERSION whenever the output would change.

whisper-cli decodes WAV, MP3, FLAC and Ogg itself; every other file also has a 16 kHz WAV decoded from it
(in `decoded/`), made here once, so the whole-file side never pays for a conversion.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import corpus, speech
from bench.accuracy import scoring_text

INBOX_VERSION = 2
# (language, about how many seconds, file type), shortest first: `--inbox-files N` takes the first N
PLAN = (
    ("en", 2, "m4a"), ("en", 3, "ogg"), ("vi", 4, "mp3"), ("en", 4, "flac"), ("en", 6, "wav"), ("en", 8, "mp3"),
    ("en", 10, "wav"), ("vi", 10, "wav"), ("en", 15, "m4a"), ("en", 20, "wav"), ("vi", 20, "m4a"), ("en", 25, "flac"),
    ("en", 30, "mp3"), ("vi", 35, "wav"), ("en", 40, "wav"), ("en", 50, "ogg"), ("vi", 50, "flac"), ("en", 60, "wav"),
    ("en", 75, "mp3"), ("en", 90, "wav"), ("en", 110, "m4a"), ("en", 130, "wav"), ("en", 140, "mp3"), ("en", 230, "wav"),
)
ENCODE = {"wav": (), "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"), "m4a": ("-c:a", "aac", "-b:a", "64k"),
          "flac": ("-c:a", "flac"), "ogg": ("-c:a", "libvorbis", "-q:a", "4")}
WHISPER_CLI_READS = frozenset({".wav", ".mp3", ".flac", ".ogg"})


@dataclass(frozen=True)
class InboxFile:
    path: Path  # the file as dropped into the inbox
    whole_file_input: Path  # what whisper-cli gets: the file itself, or a 16 kHz WAV decoded from it
    language: str
    reference: str
    duration_s: float


def folder() -> Path:
    return corpus.cache_root() / "speed" / f"inbox-v{INBOX_VERSION}"


def generate(out: Path) -> None:
    """Write every file of PLAN, the WAVs decoded for whisper-cli, and manifest.json (last)."""
    print(f"[bench.inbox] generating the mixed inbox in {out}", file=sys.stderr, flush=True)
    (out / "decoded").mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stt-inbox-") as tmp:
        work = Path(tmp)
        for i, (language, seconds, kind) in enumerate(PLAN):
            if language == "vi":
                samples, reference = corpus.vietnamese_said(seconds, 3000 + i, work)
            else:
                samples, reference = corpus.real_speech_said(seconds, 3000 + i)
            name = f"{i:02d}-{language}-{seconds:03d}s"
            wav, dropped = work / f"{name}.wav", out / f"{name}.{kind}"
            corpus.write_wav(wav, samples)
            if kind == "wav":
                shutil.copyfile(wav, dropped)
            else:
                speech.ffmpeg("-i", str(wav), *ENCODE[kind], str(dropped))
            given = dropped
            if dropped.suffix not in WHISPER_CLI_READS:
                given = out / "decoded" / f"{name}.wav"
                speech.ffmpeg("-i", str(dropped), "-ac", "1", "-ar", str(corpus.SR), "-c:a", "pcm_s16le", str(given))
            rows.append({"file": dropped.name, "whole_file_input": str(given.relative_to(out)), "language": language,
                         "reference": reference, "duration_s": round(len(samples) / corpus.SR, 3)})
    (out / "manifest.json").write_text(json.dumps({"inbox_version": INBOX_VERSION, "files": rows}, ensure_ascii=False, indent=1))


def inbox_files(count: int | None = None) -> list[InboxFile]:
    """The first `count` files of the mixed inbox (all by default), generated once."""
    out = folder()
    if not (out / "manifest.json").is_file():
        generate(out)
    rows = json.loads((out / "manifest.json").read_text())["files"]
    return [InboxFile(out / r["file"], out / r["whole_file_input"], r["language"], r["reference"], r["duration_s"]) for r in rows[:count]]


def error_rates(transcribed: list[tuple[InboxFile, str]]) -> dict:
    """Per language, over all its files together: WER (and CER for Vietnamese) of the texts against the
    references, both as bench.accuracy scores them (`scoring_text`)."""
    import jiwer

    pooled: dict[str, dict] = {}
    for item, text in transcribed:
        ref, hyp = scoring_text(item.reference, item.language), scoring_text(text, item.language)
        row = pooled.setdefault(item.language, {"files": 0, "words": 0, "word_errors": 0, "chars": 0, "char_errors": 0})
        row["files"] += 1
        row["words"] += len(ref.split())
        row["chars"] += len(ref)
        if not hyp:
            row["word_errors"] += len(ref.split())
            row["char_errors"] += len(ref)
            continue
        words = jiwer.process_words(ref, hyp)
        row["word_errors"] += words.substitutions + words.deletions + words.insertions
        chars = jiwer.process_characters(ref, hyp)
        row["char_errors"] += chars.substitutions + chars.deletions + chars.insertions
    return {language: {"files": row["files"], "words": row["words"], "wer": round(row["word_errors"] / max(row["words"], 1), 4),
                       **({"cer": round(row["char_errors"] / max(row["chars"], 1), 4)} if language == "vi" else {})}
            for language, row in sorted(pooled.items())}
