"""Run whisper.cpp's `whisper-cli` on one WAV file and parse its JSON output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stt.errors import InvalidParameter, ModelNotFound, PermanentError, WhisperFailed, WhisperTimeout
from stt.log import logger


# Extra decoding flags for every chunk (and for the whole-file baseline of bench/accuracy.py). Measured
# (README, "Chunking and accuracy"): whisper.cpp's defaults (-et 2.4, -lpt -1, -nth 0.6, temperature
# fallback, full context) are kept; -sns (suppress non-speech tokens) is harmful — on noise or room tone it
# stops whisper writing "(wind blowing)" (which the merge drops) and makes it invent sentences instead.
GUARD_ARGS: tuple[str, ...] = ()
# Cross-attention presets whisper.cpp knows for DTW token timestamps (`-dtw`); DTW needs flash attention off.
DTW_PRESETS = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
               "large.v1", "large.v2", "large.v3", "large.v3.turbo")
WORD_MAX_S = 1.0  # with DTW a token has one time (where it ends); a word starts at most this long before


def dtw_preset(model: str) -> str | None:
    """The DTW preset of a model name (`base`, `base-q5_1` → base; `large-v3-turbo` → large.v3.turbo)."""
    name = re.sub(r"-q\d.*$", "", model).replace("-", ".")
    return name if name in DTW_PRESETS else None


def decode_args(model: str) -> tuple[str, ...]:
    """whisper-cli flags for a model: the hallucination guards, and DTW word timestamps where a preset exists
    (whisper's plain token timestamps put the first words of a chunk that opens with silence seconds early)."""
    preset = dtw_preset(model)
    return (*GUARD_ARGS, *(("-dtw", preset, "-nfa") if preset else ()))


@dataclass(frozen=True)
class WhisperRun:
    """The parsed result of one whisper-cli process."""

    language: str
    segments: list[dict]
    seconds: float

    def as_dict(self) -> dict:
        return {"language": self.language, "segments": self.segments, "whisper_seconds": round(self.seconds, 3)}


def is_english_only(model: str) -> bool:
    return model.split("-")[0].endswith(".en")


def whisper_language(model: str, language: str) -> str:
    """The `-l` value for whisper-cli; English-only models accept only `en` (and `auto` means `en`)."""
    if is_english_only(model):
        if language not in ("auto", "en"):
            raise InvalidParameter(
                f"model {model!r} is English-only and cannot transcribe language {language!r}; "
                "use a multilingual model such as 'base'",
                code="UNSUPPORTED_LANGUAGE",
            )
        return "en"
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


def transcribe(
    wav: Path,
    *,
    cli: Path,
    model_path: Path,
    language: str,
    threads: int,
    timeout_s: float,
    extra_args: tuple[str, ...] = (),
) -> WhisperRun:
    """Transcribe one WAV; WhisperFailed / WhisperTimeout (both transient) when the process does not finish well."""
    check_installation(cli, model_path)
    out_base = wav.with_suffix("")
    out_json = out_base.with_suffix(".json")
    out_json.unlink(missing_ok=True)
    cmd = [str(cli), "-m", str(model_path), "-f", str(wav), "-l", language, "-t", str(threads),
           "-ojf", "-of", str(out_base), "-np", *extra_args]
    logger.debug("running {}", " ".join(cmd))
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise WhisperTimeout(f"whisper-cli did not finish within {timeout_s:.0f}s on {wav.name}") from exc
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}"
        raise WhisperFailed(f"whisper-cli {how} on {wav.name}: {tail or 'no output'}")
    if not out_json.is_file():
        raise WhisperFailed(f"whisper-cli wrote no JSON for {wav.name}")
    return parse_output(out_json.read_bytes(), seconds)


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
    segments, last_end = [], 0.0
    for item in data.get("transcription", []):
        text = _text(item.get("text", "")).strip()
        if not text:
            continue
        offsets = item.get("offsets", {})
        segment = {"start": offsets.get("from", 0) / 1000.0, "end": offsets.get("to", 0) / 1000.0, "text": text}
        words = _words(item.get("tokens") or [], int(round(last_end * 1000)))
        if words:
            segment["words"] = words
            last_end = words[-1]["end"]
        segments.append(segment)
    language = data.get("result", {}).get("language", "")
    return WhisperRun(language=language, segments=segments, seconds=seconds)


def _text(value: str) -> str:
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _words(tokens: list[dict], last_end_ms: int) -> list[dict]:
    """Words of one segment's tokens. Times: with DTW (`t_dtw` ≥ 0, where a token ends) a word ends at its
    last non-punctuation token and starts where the previous word ended (at most WORD_MAX_S before its
    end); without DTW, the token offsets."""
    words: list[dict] = []
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
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WhisperTimeout(f"whisper-cli VAD did not finish within {timeout_s:.0f}s on {wav.name}") from exc
    log = proc.stderr.decode(errors="replace")
    if proc.returncode != 0 or "VAD is enabled" not in log:
        tail = " | ".join(log.strip().splitlines()[-3:])
        raise WhisperFailed(f"whisper-cli VAD failed on {wav.name} (exit {proc.returncode}): {tail or 'no output'}")
    return [(float(a), float(b)) for a, b in _VAD_SEGMENT.findall(log)]
