"""A corpus of bad (and tricky but valid) inputs, made with ffmpeg from the jfk.wav and jfk.mp3 samples.

Each entry: file name → (how to make it, expected status, expected error code or transcript check).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import JFK_MP3, JFK_WAV

MAX_FILE_BYTES = 20_000_000   # the limits the test deployment runs with
MAX_DURATION_S = 120


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_corpus(folder: Path) -> dict[str, tuple[str, str | None]]:
    """Write the corpus into `folder`; returns name → (expected status, expected error code / 'jfk' / 'empty')."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero bytes.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("Meeting notes, not audio.\n" * 200)
    (folder / "truncated.mp3").write_bytes(JFK_MP3.read_bytes()[:38000])
    data = JFK_WAV.read_bytes()
    (folder / "broken header.wav").write_bytes(data[:12] + b"\x00" * 32 + data[44:])
    (folder / "setup.exe").write_bytes(b"MZ\x90\x00" + bytes(4096))
    (folder / "really an mp3.wav").write_bytes(JFK_MP3.read_bytes())
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=96000:cl=stereo", "-t", "40", "-c:a", "pcm_s24le", str(folder / "too big.wav"))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(MAX_DURATION_S + 30), "-b:a", "8k", str(folder / "too long.mp3"))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.1", str(folder / "blip.wav"))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "20", str(folder / "silence only.wav"))
    ffmpeg("-i", str(JFK_WAV), "-af", "pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0", "-ar", "96000", "-c:a", "pcm_s16le", str(folder / "8ch 96k.wav"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2", "-an", str(folder / "screen recording.mp4"))
    (folder / "Hội thảo ü spaces & more.wav").write_bytes(data)
    assert (folder / "too big.wav").stat().st_size > MAX_FILE_BYTES
    return {
        "zero bytes.wav": ("FAILED", "EMPTY_FILE"),
        "notes.mp3": ("FAILED", "UNREADABLE_AUDIO"),
        "truncated.mp3": ("FAILED", "TRUNCATED_AUDIO"),
        "broken header.wav": ("FAILED", "UNREADABLE_AUDIO"),
        "setup.exe": ("FAILED", "UNSUPPORTED_EXTENSION"),
        "really an mp3.wav": ("COMPLETED", "jfk"),
        "too big.wav": ("FAILED", "FILE_TOO_LARGE"),
        "too long.mp3": ("FAILED", "DURATION_TOO_LONG"),
        "blip.wav": ("FAILED", "AUDIO_TOO_SHORT"),
        "silence only.wav": ("COMPLETED", "empty"),
        "8ch 96k.wav": ("COMPLETED", "jfk"),
        "screen recording.mp4": ("FAILED", "NO_AUDIO_STREAM"),
        "Hội thảo ü spaces & more.wav": ("COMPLETED", "jfk"),
    }
