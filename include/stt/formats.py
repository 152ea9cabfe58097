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


MIN_CUE_S = 0.01


def _cue_text(text: str) -> str:
    """One line of cue text: no line breaks or blank lines (they end a cue), no `-->` (it starts one)."""
    return " ".join(text.split()).replace("-->", "->")


def _cues(transcript: dict) -> list[tuple[float, float, str]]:
    """(start, end, text) of every segment with text, end strictly after start (players drop empty cues)."""
    cues = []
    for seg in transcript["segments"]:
        text = _cue_text(seg["text"])
        if text:
            start = max(0.0, float(seg["start"]))
            cues.append((start, max(float(seg["end"]), start + MIN_CUE_S), text))
    return cues


def to_txt(transcript: dict) -> str:
    return "".join(_cue_text(seg["text"]) + "\n" for seg in transcript["segments"] if _cue_text(seg["text"]))


def to_srt(transcript: dict) -> str:
    blocks = [
        f"{i}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: dict) -> str:
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks = [f"{_clock(start, '.')} --> {_clock(end, '.')}\n{escape(text)}\n" for start, end, text in _cues(transcript)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(transcript: dict) -> str:
    return json.dumps(transcript, ensure_ascii=False, indent=2) + "\n"


RENDERERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}


def render(transcript: dict, fmt: str) -> str:
    return RENDERERS[fmt](transcript)
