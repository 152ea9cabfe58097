"""Text compared word for word: one word as the merge aligns it, a transcript as tests and benchmarks score it,
and whisper's non-speech annotations ([BLANK_AUDIO], (music), *laughs*, ♪ … ♪)."""

from __future__ import annotations

import re
import unicodedata

FILLERS = frozenset({"uh", "um", "uhm", "umm", "hmm", "mm", "mhm", "er", "erm", "ah"})  # as Whisper's English normaliser

_ANNOTATION = re.compile(r"^\s*(\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪[^♪]*♪?|[♪\s]+)\s*$")  # a whole text that is one
_ANNOTATIONS_INSIDE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪")  # annotations (and stray ♪) within a text


def _folded(text: str) -> str:
    """NFC, lower case, apostrophes (straight and curly) removed: "Don’t" and "don't" are one word."""
    return unicodedata.normalize("NFC", text).lower().replace("’", "").replace("'", "")


def norm(word: str) -> str:
    """A word for comparison: lower case, letters and digits only (any script)."""
    return "".join(ch for ch in _folded(word) if ch.isalnum())


def normalise(text: str, *, drop_fillers: bool = False) -> str:
    """A transcript for comparison: lower case, no annotations ([music], (noise)), no punctuation or apostrophes,
    hyphens as spaces, single spaces; with `drop_fillers`, no FILLERS either (as word error rates are scored)."""
    text = _ANNOTATIONS_INSIDE.sub(" ", _folded(text))
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    return " ".join(word for word in words if not (drop_fillers and word in FILLERS))


def is_annotation(text: str) -> bool:
    """Whether a segment's or word's whole text is a non-speech annotation."""
    return bool(_ANNOTATION.match(text))
