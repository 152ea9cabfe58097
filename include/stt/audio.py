"""Audio: probe with ffprobe, decode once to 16 kHz mono PCM with ffmpeg, plan and cut chunks with pydub."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from stt.errors import InvalidAudio, TransientError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about a source file."""

    format_name: str
    duration_s: float
    codec: str
    sample_rate: int
    channels: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk of the decoded audio: [start_s, end_s) and how its cut was chosen."""

    index: int
    start_s: float
    end_s: float
    cut: str = "fixed"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def as_dict(self) -> dict:
        return asdict(self)


def _run(cmd: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"{what} took longer than {timeout_s:.0f}s", code="DECODE_TIMEOUT") from exc


def probe(path: Path, timeout_s: float = 60.0) -> AudioInfo:
    """Read container and first audio stream; InvalidAudio when there is no decodable audio."""
    if path.stat().st_size == 0:
        raise InvalidAudio("the file is empty (0 bytes)", code="EMPTY_FILE")
    proc = _run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        timeout_s,
        "ffprobe",
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no detail"]
        raise InvalidAudio(f"not a readable audio file: {detail[0]}", code="UNREADABLE_AUDIO")
    info = json.loads(proc.stdout or b"{}")
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise InvalidAudio("the file has no audio stream", code="NO_AUDIO_STREAM")
    stream = audio[0]
    fmt = info.get("format", {})
    duration = _first_number(stream.get("duration"), fmt.get("duration"))
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise InvalidAudio("the audio has no measurable duration", code="UNREADABLE_AUDIO")
    return AudioInfo(
        format_name=str(fmt.get("format_name", "")),
        duration_s=duration,
        codec=str(stream.get("codec_name", "")),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
    )


def _first_number(*values) -> float | None:
    for value in values:
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def decode_to_wav(src: Path, dest: Path, timeout_s: float) -> Path:
    """Decode any input once to 16 kHz mono 16-bit WAV (the only format whisper.cpp needs)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.stem + ".part.wav")
    proc = _run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), "-map", "0:a:0", "-vn",
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", str(partial)],
        timeout_s,
        "ffmpeg decode",
    )
    if proc.returncode != 0 or not partial.exists() or partial.stat().st_size <= 44:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio decoded"]
        partial.unlink(missing_ok=True)
        raise InvalidAudio(f"the audio could not be decoded: {detail[0]}", code="CORRUPT_AUDIO")
    partial.replace(dest)
    return dest


def plan_fixed_chunks(duration_s: float, chunk_s: float) -> list[ChunkPlan]:
    """Split [0, duration) into equal chunks of about `chunk_s` (no sliver at the end)."""
    if duration_s <= 0:
        return []
    count = max(1, round(duration_s / chunk_s))
    step = duration_s / count
    bounds = [round(i * step, 3) for i in range(count)] + [round(duration_s, 3)]
    return [ChunkPlan(i, bounds[i], bounds[i + 1]) for i in range(count)]


def cut_chunks(wav: Path, plans: list[ChunkPlan], out_dir: Path) -> list[Path]:
    """Write each planned chunk of an already-decoded WAV as its own WAV file (no re-decode)."""
    from pydub import AudioSegment

    audio = AudioSegment.from_wav(wav)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for plan in plans:
        path = out_dir / f"chunk-{plan.index:05d}.wav"
        audio[int(plan.start_s * 1000) : int(plan.end_s * 1000)].export(path, format="wav")
        files.append(path)
    return files
