"""Run whisper.cpp's `whisper-cli` on one WAV file and parse its JSON output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stt.errors import InvalidParameter, ModelNotFound, PermanentError, WhisperFailed, WhisperTimeout
from stt.log import logger


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
    """Turn whisper-cli's `-ojf` JSON into segments with times in seconds (relative to the chunk)."""
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise WhisperFailed(f"whisper-cli wrote invalid JSON: {exc}") from exc
    segments = []
    for item in data.get("transcription", []):
        text = item.get("text", "").strip()
        if not text:
            continue
        offsets = item.get("offsets", {})
        segments.append({
            "start": offsets.get("from", 0) / 1000.0,
            "end": offsets.get("to", 0) / 1000.0,
            "text": text,
        })
    language = data.get("result", {}).get("language", "")
    return WhisperRun(language=language, segments=segments, seconds=seconds)
