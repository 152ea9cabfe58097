"""Run whisper.cpp's `whisper-cli` on one WAV file and parse its JSON output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stt import procs
from stt.errors import InvalidParameter, ModelNotFound, PermanentError, WhisperCrash, WhisperFailed, WhisperTimeout
from stt.log import logger
from stt.records import Segment, Word


# Extra decoding flags for every chunk (and for the whole-file baseline of bench/accuracy.py). Measured
# (README, "Chunking and accuracy"): whisper.cpp's defaults (-et 2.4, -lpt -1, -nth 0.6, temperature
# fallback, full context) are kept; -sns (suppress non-speech tokens) is harmful — on noise or room tone it
# stops whisper writing "(wind blowing)" (which the merge drops) and makes it invent sentences instead.
GUARD_ARGS: tuple[str, ...] = ()
# Cross-attention presets whisper.cpp knows for DTW token timestamps (`-dtw`); DTW needs flash attention off.
DTW_PRESETS = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
               "large.v1", "large.v2", "large.v3", "large.v3.turbo")
# Signals of a crash inside whisper-cli (not of a kill from outside): the same input is likely to crash it again.
CRASH_SIGNALS = frozenset({signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL})
WORD_MAX_S = 1.0  # with DTW a token has one time (where it ends); a word starts at most this long before


def dtw_preset(model: str) -> str | None:
    """The DTW preset of a model name (`base`, `base-q5_1` → base; `large-v3-turbo` → large.v3.turbo)."""
    name = re.sub(r"-q\d.*$", "", model).replace("-", ".")
    return name if name in DTW_PRESETS else None


WORD_TIMINGS = ("dtw", "tokens")


def decode_args(model: str, word_timing: str = "dtw", prompt: str = "") -> tuple[str, ...]:
    """whisper-cli flags for a model: the hallucination guards, the decoder without flash attention (`-nfa`:
    with whisper/patches the encoder keeps flash attention, and the decoder decodes about twice as fast without
    it on CPU; DTW needs it off), with `word_timing="dtw"` DTW word timestamps where a preset exists
    (whisper's plain token timestamps put the first words of a chunk that opens with silence early), and a
    job's `prompt` (check_prompt) before each input file, as whisper-cli's `--prompt`."""
    if word_timing not in WORD_TIMINGS:
        raise InvalidParameter(f"word timing {word_timing!r} is not known; choose one of {', '.join(WORD_TIMINGS)} (STT_WORD_TIMING)",
                               code="INVALID_WORD_TIMING")
    preset = dtw_preset(model) if word_timing == "dtw" else None
    return (*GUARD_ARGS, "-nfa", *(("-dtw", preset) if preset else ()), *(("--prompt", prompt) if prompt else ()))


PROMPT_MAX_CHARS = 500  # whisper reads at most 224 tokens of context (half its text context): about 800 characters of English


def check_prompt(value: object) -> str:
    """A job's prompt (names and terms the recording uses, or a sentence in its style) with its white space
    collapsed; InvalidParameter (INVALID_PROMPT) when it is not text, too long, or holds control characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"prompt must be text, not {type(value).__name__}", code="INVALID_PROMPT")
    prompt = " ".join(value.split())
    if len(prompt) > PROMPT_MAX_CHARS:
        raise InvalidParameter(f"prompt is {len(prompt)} characters long, over the limit of {PROMPT_MAX_CHARS}", code="INVALID_PROMPT")
    control = sorted({f"U+{ord(c):04X}" for c in prompt if unicodedata.category(c) in ("Cc", "Cs")})
    if control:
        raise InvalidParameter(f"prompt holds control characters ({', '.join(control)})", code="INVALID_PROMPT")
    return prompt


@dataclass(frozen=True)
class WhisperRun:
    """The parsed result of one whisper-cli process: `language` is the one whisper decoded in (told or
    detected), `language_told` the `-l` value it was run with (`auto`: it detected the language itself)."""

    language: str
    segments: list[Segment]
    seconds: float
    language_told: str = ""
    detected: tuple[str, float] | None = None  # told `auto`: the language detected and its probability (ProcessStats.detected)

    def as_dict(self) -> dict:
        detected = {"detected": list(self.detected)} if self.detected else {}
        return {"language": self.language, "language_told": self.language_told, **detected, "segments": self.segments, "whisper_seconds": round(self.seconds, 3)}


def is_english_only(model: str) -> bool:
    return model.split("-")[0].endswith(".en")


def whisper_language(model: str, language: str) -> str:
    """The `-l` value for whisper-cli: the language as given. An English-only model takes only `en`: with
    `auto` or another language it would transcribe any speech as English, so that is refused."""
    if is_english_only(model) and language != "en":
        wanted = "detect the language (auto)" if language == "auto" else f"transcribe language {language!r}"
        raise InvalidParameter(
            f"model {model!r} is English-only and cannot {wanted}; use a multilingual model such as 'base', "
            "or language 'en' for English speech",
            code="MODEL_LANGUAGE_MISMATCH",
        )
    return language


def check_installation(cli: Path, model_path: Path) -> None:
    """Fail fast, with the fix in the message, when the binary or the model is missing."""
    if not (cli.is_file() and os.access(cli, os.X_OK)):
        raise PermanentError(
            f"whisper-cli not found at {cli}: run `bash whisper/provision.sh` or set WHISPER_CLI",
            code="WHISPER_NOT_INSTALLED",
        )
    if not model_path.is_file():
        raise ModelNotFound(
            f"model file {model_path} is missing: run `bash whisper/provision.sh --models <name>`",
        )


def transcribe(wav: Path, **options) -> WhisperRun:
    """Transcribe one WAV (options as for `transcribe_many`); WhisperFailed / WhisperTimeout (both transient)
    when the process does not finish well."""
    runs: list[WhisperRun] = []
    transcribe_many([wav], on_result=lambda _, run: runs.append(run), **options)
    return runs[0]


@dataclass(frozen=True)
class ProcessStats:
    """What one whisper-cli process cost: wall seconds, CPU seconds and peak resident memory (MB); run with
    `-l auto`, the language it detected in each file and its probability (`("", 0.0)` when none was logged)."""

    seconds: float
    cpu_s: float
    peak_rss_mb: float
    detected: tuple[tuple[str, float], ...] = ()

    @classmethod
    def combined(cls, runs: list["ProcessStats"]) -> "ProcessStats":
        """What several processes run one after another cost together."""
        return cls(seconds=sum(r.seconds for r in runs), cpu_s=round(sum(r.cpu_s for r in runs), 3), peak_rss_mb=max(r.peak_rss_mb for r in runs))


def transcribe_many(
    wavs: list[Path],
    *,
    cli: Path,
    model_path: Path,
    language: str,
    threads: int,
    timeout_s: float,
    extra_args: tuple[str, ...] = (),
    on_result: Callable[[int, WhisperRun], None],
    poll_s: float = 0.2,
    nice: int = 0,
) -> ProcessStats:
    """Transcribe several WAVs with one whisper-cli process (the model is loaded once).

    Each file is decoded as by a process of its own (no text context: `no_context` is whisper-cli's default; the
    sampling of temperature fallback starts afresh with whisper/patches, reseed-sampling-per-file.patch), so a
    chunk's text does not depend on the batch it is in. It writes file i's JSON
    before starting file i+1: `on_result(i, run)` is called as soon as file i's JSON is complete (polled every
    `poll_s`), so a caller can store and count each result while the rest is still being decoded and a retry
    need not redo it. With `language="auto"` each file's detected language and its probability are read from
    the process's log (`ProcessStats.detected`); a whisper-cli built with whisper/patches reuses the detection's
    encoder pass for the file's first window, so detecting costs about as much as being told.
    `WhisperRun.seconds` of a file is the time since the previous file was done.
    Raises WhisperFailed / WhisperTimeout (transient) when the process does not finish well, WhisperCrash when it
    died of a crash signal (with the index of the file it was decoding); results delivered before that stay
    delivered. The process never outlives the call or the task process (stt.procs). `nice` > 0 lowers its CPU
    priority by that much (STT_WHISPER_NICE).
    """
    check_installation(cli, model_path)
    outputs = [wav.with_suffix("") for wav in wavs]
    for out in outputs:
        out.with_suffix(".json").unlink(missing_ok=True)
    detecting = language == "auto"
    quiet = () if detecting else ("-np",)  # -np also silences the log lines of the detected language
    cmd = [str(cli), "-m", str(model_path), "-l", language, "-t", str(threads), "-ojf", *quiet, *extra_args]
    for wav, out in zip(wavs, outputs):
        cmd += ["-f", str(wav), "-of", str(out)]
    logger.debug("running {}", " ".join(cmd))
    names = wavs[0].name if len(wavs) == 1 else f"{len(wavs)} files ({wavs[0].name} … {wavs[-1].name})"
    with tempfile.TemporaryFile() as stderr, procs.spawned(cmd, nice=nice, stdout=subprocess.DEVNULL, stderr=stderr) as proc:
        started = time.monotonic()
        delivered, last_done = 0, started
        status, usage = 0, None

        def deliver(final: bool) -> None:
            """Hand over every finished file in order: one whose JSON is complete (it parses)."""
            nonlocal delivered, last_done
            while delivered < len(outputs):
                out_json = outputs[delivered].with_suffix(".json")
                try:
                    run = parse_output(out_json.read_bytes(), time.monotonic() - last_done)
                except (FileNotFoundError, WhisperFailed):
                    if final:
                        raise WhisperFailed(f"whisper-cli wrote no complete JSON for {wavs[delivered].name}") from None
                    return
                on_result(delivered, run)
                delivered, last_done = delivered + 1, time.monotonic()

        peak_mb = 0.0
        while True:
            peak_mb = max(peak_mb, procs.peak_rss_mb(proc.pid) or 0.0)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - started > timeout_s:
                raise WhisperTimeout(f"whisper-cli did not finish within {timeout_s:.0f}s on {names}")
            deliver(final=False)
            time.sleep(poll_s)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            deliver(final=False)  # what it finished before it died stays delivered
            stderr.seek(0)
            tail = " | ".join(stderr.read().decode(errors="replace").strip().splitlines()[-3:])
            if -proc.returncode in CRASH_SIGNALS and delivered < len(wavs):
                raise WhisperCrash(f"whisper-cli crashed ({signal.Signals(-proc.returncode).name}) on {wavs[delivered].name}: {tail or 'no output'}",
                                   index=delivered)
            how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}"
            raise WhisperFailed(f"whisper-cli {how} on {names}: {tail or 'no output'}")
        deliver(final=True)
        detected: tuple[tuple[str, float], ...] = ()
        if detecting:
            stderr.seek(0)
            found = parse_detections(stderr.read().decode(errors="replace"))
            detected = tuple(found.get(str(wav), ("", 0.0)) for wav in wavs)
    return ProcessStats(seconds=seconds, cpu_s=round(usage.ru_utime + usage.ru_stime, 3), peak_rss_mb=peak_mb or round(usage.ru_maxrss / 1024, 1), detected=detected)


_DETECTED = re.compile(r"auto-detected language: (\w+) \(p = ([0-9.]+)\)")
_PROCESSING = re.compile(r"^main: processing '(.*)' \(", re.MULTILINE)


def parse_detections(log: str) -> dict[str, tuple[str, float]]:
    """File name → (language, probability) from whisper-cli's log with `-l auto`: each file's `processing '…'` line is
    followed by its `auto-detected language: xx (p = 0.93)` line."""
    found: dict[str, tuple[str, float]] = {}
    starts = list(_PROCESSING.finditer(log))
    for i, start in enumerate(starts):
        section = log[start.end() : starts[i + 1].start() if i + 1 < len(starts) else len(log)]
        if detected := _DETECTED.search(section):
            found[start.group(1)] = (detected.group(1), float(detected.group(2)))
    return found


def parse_output(raw: bytes, seconds: float = 0.0) -> WhisperRun:
    """Turn whisper-cli's `-ojf` JSON into segments with times in seconds (relative to the chunk).

    A segment gets `words` (text, start, end) when whisper-cli wrote its tokens: a token that begins
    with a space starts a word, the others (word pieces, punctuation) continue it. whisper-cli writes
    token text as raw bytes, so a token may hold half of a UTF-8 character (Vietnamese): words are
    assembled from bytes (the file is read with surrogateescape) before they are decoded.
    """
    try:
        data = json.loads(raw.decode("utf-8", errors="surrogateescape"), strict=False)
    except json.JSONDecodeError as exc:
        raise WhisperFailed(f"whisper-cli wrote invalid JSON: {exc}") from exc
    segments: list[Segment] = []
    last_end = 0.0
    for item in data.get("transcription", []):
        text = _text(item.get("text", "")).strip()
        if not text:
            continue
        offsets = item.get("offsets", {})
        segment: Segment = {"start": offsets.get("from", 0) / 1000.0, "end": offsets.get("to", 0) / 1000.0, "text": text}
        words = _words(item.get("tokens") or [], int(round(last_end * 1000)))
        if words:
            segment["words"] = words
            last_end = words[-1]["end"]
        segments.append(segment)
    language = data.get("result", {}).get("language", "")
    return WhisperRun(language=language, segments=segments, seconds=seconds, language_told=data.get("params", {}).get("language", ""))


def _text(value: str) -> str:
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _words(tokens: list[dict], last_end_ms: int) -> list[Word]:
    """Words of one segment's tokens. Times: with DTW (`t_dtw` ≥ 0, where a token ends) a word ends at its
    last non-punctuation token and starts where the previous word ended (at most WORD_MAX_S before its
    end); without DTW, the token offsets."""
    words: list[Word] = []
    pieces: list[tuple[bytes, int, int, int]] = []
    last = last_end_ms

    def flush() -> None:
        nonlocal last
        raw = b"".join(p[0] for p in pieces)
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            dtw = [p[3] for p in pieces if p[3] >= 0 and _spoken(p[0])] or [p[3] for p in pieces if p[3] >= 0]
            if dtw:
                end = max(dtw[-1], last)
                start = max(last, end - int(WORD_MAX_S * 1000))
            else:
                start, end = pieces[0][1], max(pieces[-1][2], pieces[0][1])
            words.append({"start": start / 1000.0, "end": end / 1000.0, "text": text})
            last = end
        pieces.clear()

    for token in tokens:
        text = token.get("text", "")
        if text.startswith("[_") and text.endswith("]"):  # [_BEG_], [_TT_150], [_SOT_]...: special tokens
            continue
        piece = text.encode("utf-8", errors="surrogateescape")
        offsets = token.get("offsets", {})
        if piece.startswith(b" ") and pieces:
            flush()
        dtw = token.get("t_dtw", -1)
        pieces.append((piece, int(offsets.get("from", 0)), int(offsets.get("to", 0)), int(dtw) * 10 if dtw is not None and dtw >= 0 else -1))
    if pieces:
        flush()
    return words


def _spoken(piece: bytes) -> bool:
    return any(ch.isalnum() for ch in piece.decode("utf-8", errors="ignore"))


_VAD_SEGMENT = re.compile(r"VAD segment \d+: start = ([0-9.]+), end = ([0-9.]+)")


def vad_speech(wav: Path, *, cli: Path, model_path: Path, vad_model_path: Path, threads: int, timeout_s: float) -> list[tuple[float, float]]:
    """Speech spans (seconds) of a WAV by whisper.cpp's Silero VAD, read from whisper-cli's log.

    whisper-cli runs the VAD over the whole file before decoding; `-d 1` then limits decoding to the
    first millisecond, so this costs the VAD and a model load, not a transcription.
    """
    check_installation(cli, model_path)
    if not vad_model_path.is_file():
        raise ModelNotFound(f"VAD model {vad_model_path} is missing: run `bash whisper/provision.sh`")
    cmd = [str(cli), "-m", str(model_path), "-f", str(wav), "-t", str(threads), "-d", "1", "-nt",
           "--vad", "-vm", str(vad_model_path)]
    logger.debug("running {}", " ".join(cmd))
    try:
        proc = procs.run(cmd, timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise WhisperTimeout(f"whisper-cli VAD did not finish within {timeout_s:.0f}s on {wav.name}") from exc
    log = proc.stderr.decode(errors="replace")
    if proc.returncode != 0 or "VAD is enabled" not in log:
        tail = " | ".join(log.strip().splitlines()[-3:])
        raise WhisperFailed(f"whisper-cli VAD failed on {wav.name} (exit {proc.returncode}): {tail or 'no output'}")
    return [(float(a), float(b)) for a, b in _VAD_SEGMENT.findall(log)]
