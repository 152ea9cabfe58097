"""Speech whisper left without words in a chunk, and a second hearing of it put in its place.

whisper sometimes ends a window early (an end-of-text after a sentence) or lets one segment run over what
follows, and writes nothing for seconds of speech; on a whole file its next window would start there and
hear it. The chunk planner's silence map says where speech is: a stretch holding more than a few seconds of
it and no word (a second at the chunk's edges, where whisper leaves out short utterances next to a cut) is
decoded again on its own, and what whisper hears there goes in between the words around it.
A hearing again can stop early in turn: the speech it leaves after its last word is heard on its own once
more (pipeline.hear_again). Speech it leaves before its last word is not: there whisper has mostly written
the words and timed them late.
"""

from __future__ import annotations

from stt.audio import Timeline
from stt.merge import Silences, shift_segments
from stt.records import Segment
from stt.text import is_annotation

WORD_PAD_S = 0.3  # a word is taken to cover this much more on each side (word times are approximate)


def _spoken(segments: list[Segment]) -> list[dict]:
    """The items that carry text: each word of a timed segment, a whole untimed one; annotations are not text."""
    items: list[dict] = []
    for seg in segments:
        if is_annotation(seg["text"]):
            continue
        words = seg.get("words")
        items.extend((w for w in words if not is_annotation(w["text"])) if words else [seg])
    return items


def unheard(segments: list[Segment], *, start_s: float, pieces, silences, min_speech_s: float,
            edge_min_speech_s: float | None = None) -> list[tuple[float, float]]:
    """Stretches of a chunk (chunk time) without a word of `segments` (chunk time) that hold at least
    `min_speech_s` of speech: audio outside `silences` (recording time, the chunk plan's); at least
    `edge_min_speech_s` (when lower) for a stretch before the chunk's first word or after its last. `pieces`:
    the recording spans the chunk is made of."""
    edge_bar = min(min_speech_s, edge_min_speech_s) if edge_min_speech_s else min_speech_s
    first_at, last_at = float(pieces[0][0]), float(pieces[-1][1])
    timeline = Timeline.of_chunk(start_s, pieces)
    speech = Silences(silences)
    covered = sorted((timeline.to_recording(item["start"]) - WORD_PAD_S, timeline.to_recording(item["end"]) + WORD_PAD_S)
                     for item in _spoken(segments))
    found = []
    for a, b in pieces:
        at, free = float(a), []
        for s, e in covered:
            if e <= at:
                continue
            if s >= b:
                break
            if s > at:
                free.append((at, s))
            at = max(at, e)
        if at < b:
            free.append((at, float(b)))
        for s, e in free:
            bar = edge_bar if s <= first_at or e >= last_at else min_speech_s
            if speech.speech(s, e) >= bar:
                found.append((timeline.to_virtual(s), timeline.to_virtual(e)))
    return found


def _first_time(seg: Segment) -> float:
    words = seg.get("words")
    return words[0]["start"] if words else seg["start"]


def _split(seg: Segment, at: float) -> list[Segment]:
    """A timed segment whose words lie on both sides of `at` as two segments; any other segment as it is."""
    words = seg.get("words") or []
    before, after = [w for w in words if w["start"] < at], [w for w in words if w["start"] >= at]
    if not before or not after:
        return [seg]
    return [{**seg, "start": part[0]["start"], "end": part[-1]["end"], "text": " ".join(w["text"] for w in part), "words": part}
            for part in (before, after)]


def put_in_place(segments: list[Segment], heard: list[Segment], span: tuple[float, float]) -> list[Segment]:
    """A chunk's segments with `heard` (what whisper heard in `span` of the chunk, times relative to the span's
    start) among them in time order; a segment whose words run across the span's start is split there."""
    heard = [seg for seg in shift_segments(heard, span[0]) if not is_annotation(seg["text"])]
    if not heard:
        return segments
    parts = [part for seg in segments for part in _split(seg, span[0])]
    return sorted(parts + heard, key=_first_time)


def word_count(segments: list[Segment]) -> int:
    return sum(len(item["text"].split()) for item in _spoken(segments))


def last_word_end(segments: list[Segment]) -> float | None:
    """When the last word of `segments` ends (in their time); None without words."""
    return max((item["end"] for item in _spoken(segments)), default=None)
