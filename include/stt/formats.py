"""Render a merged transcript as txt, srt, vtt and json."""

from __future__ import annotations

import json

FORMATS = ("txt", "srt", "vtt", "json")


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def to_txt(transcript: dict) -> str:
    return "".join(seg["text"] + "\n" for seg in transcript["segments"])


def to_srt(transcript: dict) -> str:
    blocks = [
        f"{i}\n{_clock(seg['start'], ',')} --> {_clock(seg['end'], ',')}\n{seg['text']}\n"
        for i, seg in enumerate(transcript["segments"], start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: dict) -> str:
    blocks = [f"{_clock(seg['start'], '.')} --> {_clock(seg['end'], '.')}\n{seg['text']}\n" for seg in transcript["segments"]]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(transcript: dict) -> str:
    return json.dumps(transcript, ensure_ascii=False, indent=2) + "\n"


RENDERERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}


def render(transcript: dict, fmt: str) -> str:
    return RENDERERS[fmt](transcript)
