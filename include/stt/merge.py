"""Merge per-chunk whisper results into one timeline."""

from __future__ import annotations

from collections import Counter


def shift_segments(segments: list[dict], offset_s: float) -> list[dict]:
    """The one place chunk-relative times become recording times."""
    return [{**seg, "start": round(seg["start"] + offset_s, 3), "end": round(seg["end"] + offset_s, 3)} for seg in segments]


def dominant_language(chunks: list[dict]) -> str:
    """The language spoken longest, weighting each chunk's detected language by its length."""
    weights: Counter[str] = Counter()
    for chunk in chunks:
        if chunk.get("language"):
            weights[chunk["language"]] += chunk["end_s"] - chunk["start_s"]
    return weights.most_common(1)[0][0] if weights else ""


def merge_chunks(chunks: list[dict]) -> dict:
    """Chunks (index, start_s, end_s, language, segments) → transcript with segments and a chunk map."""
    ordered = sorted(chunks, key=lambda c: c["index"])
    segments: list[dict] = []
    chunk_map = []
    for chunk in ordered:
        shifted = shift_segments(chunk["segments"], chunk["start_s"])
        chunk_map.append({
            "index": chunk["index"],
            "start": chunk["start_s"],
            "end": chunk["end_s"],
            "cut": chunk.get("cut", "fixed"),
            "language": chunk.get("language", ""),
            "segments": len(shifted),
        })
        segments.extend(shifted)
    return {
        "language": dominant_language(ordered),
        "segments": segments,
        "text": " ".join(seg["text"] for seg in segments).strip(),
        "chunks": chunk_map,
    }
