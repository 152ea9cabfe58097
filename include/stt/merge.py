"""Merge per-chunk whisper results into one timeline.

In order: shift every chunk's times by its start (`shift_segments`, the only place chunk times become
recording times), drop non-speech annotations, splice overlapping neighbours at a word both heard
(`splice`), collapse runaway repetition loops, drop text lying entirely in silence and move segment
edges that whisper put inside a silence onto the speech.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter

from stt.audio import Timeline
from stt.records import ChunkResult, Segment
from stt.text import is_annotation, norm

REPEAT_LIMIT = 8  # an n-gram said more than this many times in a row is a decoding loop: keep one copy
# (people do repeat a word or phrase four or five times, "words words words words", "ha ha ha"; a loop runs on)
MAX_NGRAM = 12
ALIGN_MARGIN_S = 1.0  # overlap words are searched this far beyond the overlap
ALIGN_TIME_S = 1.5  # two copies of one word are at most this far apart in time
MIN_SPEECH_S = 0.1  # a word with less than this outside silence lies in silence...
WORD_SLACK_S = 0.2  # ...its times widened by this much (DTW word times are approximate)
SNAP_S = 1.5  # a segment edge this close to a speech onset/offset (with nothing between) is moved onto it


def shift_segments(segments: list[Segment], offset_s: float, pieces: list | None = None) -> list[Segment]:
    """The one place chunk-relative times become recording times (segments and their words).

    A chunk is the recording from `offset_s` on, or — when the planner shortened long silences inside it —
    its `pieces` (recording spans) laid end to end: a time then maps into the piece it falls in."""
    to_recording = Timeline.of_chunk(offset_s, pieces).to_recording

    def shift(item: dict) -> dict:
        return {**item, "start": to_recording(item["start"]), "end": to_recording(item["end"])}

    out = []
    for seg in segments:
        moved = shift(seg)
        if "words" in seg:
            moved["words"] = [shift(w) for w in seg["words"]]
        out.append(moved)
    return out


def dominant_language(chunks: list[ChunkResult]) -> str:
    """The language spoken longest, weighting each chunk's detected language by its length."""
    weights: Counter[str] = Counter()
    for chunk in chunks:
        if chunk.get("language"):
            weights[chunk["language"]] += chunk["end_s"] - chunk["start_s"]
    return weights.most_common(1)[0][0] if weights else ""


def _with_words(seg: dict) -> dict:
    """A working copy whose `words` always exist (`timed` says whether whisper timed them; words it did not
    time are spread over the segment, for alignment only); annotation words such as [BLANK_AUDIO] go."""
    seg = dict(seg)
    if seg.get("words"):
        words = [dict(w) for w in seg["words"] if not is_annotation(w["text"])]
        if len(words) != len(seg["words"]):
            seg["text"] = " ".join(w["text"] for w in words)
        seg["words"], seg["timed"] = words, True
        if words:  # word times are sharper than whisper's segment times (which start at the chunk's start)
            seg["start"], seg["end"] = words[0]["start"], words[-1]["end"]
        return seg
    tokens = seg["text"].split()
    span, total = seg["end"] - seg["start"], sum(len(t) for t in tokens) or 1
    words, at = [], seg["start"]
    for token in tokens:
        step = span * len(token) / total
        words.append({"start": round(at, 3), "end": round(at + step, 3), "text": token})
        at += step
    seg["words"], seg["timed"] = words, False
    return seg


def _mid(word: dict) -> float:
    return (word["start"] + word["end"]) / 2


def _rebuild(seg: dict, words: list[dict]) -> dict | None:
    """The segment reduced to `words` (None when none are left)."""
    if len(words) == len(seg["words"]):
        return seg
    if not words:
        return None
    return {**seg, "words": words, "text": " ".join(w["text"] for w in words),
            "start": words[0]["start"] if seg["timed"] else seg["start"],
            "end": words[-1]["end"] if seg["timed"] else seg["end"]}


def splice(left: list[dict], right: list[dict], overlap: tuple[float, float]) -> tuple[list[dict], list[dict], dict]:
    """Join two chunks that both transcribed `overlap` (recording seconds): keep one copy of its words.

    The words around the overlap are aligned by text (difflib on normalised words, pairs at most
    ALIGN_TIME_S apart); the join is made at the aligned word nearest the middle of the overlap — far from
    both chunks' edges, where a word cut in half is misheard — preferring words inside a run of two or
    more agreeing words. Left keeps its words up to and including that word, right its words after it.
    Without any agreeing word (nothing said there, or the two disagree), the join is at the middle.
    """
    o0, o1 = overlap
    centre = (o0 + o1) / 2
    lw = [(si, wi, w) for si, seg in enumerate(left) for wi, w in enumerate(seg["words"]) if w["end"] > o0 - ALIGN_MARGIN_S]
    rw = [(si, wi, w) for si, seg in enumerate(right) for wi, w in enumerate(seg["words"]) if w["start"] < o1 + ALIGN_MARGIN_S]
    a, b = [norm(w["text"]) for *_, w in lw], [norm(w["text"]) for *_, w in rw]
    pairs = []
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            if a[i] and abs(_mid(lw[i][2]) - _mid(rw[j][2])) <= ALIGN_TIME_S:
                pairs.append((i, j, block.size))
    if pairs:
        i, j, run = min(pairs, key=lambda p: (p[2] < 2, abs((_mid(lw[p[0]][2]) + _mid(rw[p[1]][2])) / 2 - centre)))
        drop_left = {(si, wi) for si, wi, _ in lw[i + 1 :]}
        drop_right = {(si, wi) for si, wi, _ in rw[: j + 1]}
        how = {"join": "aligned", "at": round(_mid(rw[j][2]), 3), "word": rw[j][2]["text"], "agreeing": run}
    else:
        drop_left = {(si, wi) for si, wi, w in lw if _mid(w) >= centre}
        drop_right = {(si, wi) for si, wi, w in rw if _mid(w) < centre}
        how = {"join": "midpoint", "at": round(centre, 3)}

    def keep(segs: list[dict], dropped: set) -> tuple[list[dict], set[int]]:
        out, cut = [], set()
        for si, seg in enumerate(segs):
            rebuilt = _rebuild(seg, [w for wi, w in enumerate(seg["words"]) if (si, wi) not in dropped])
            if rebuilt is not None:
                if rebuilt is not seg:
                    cut.add(len(out))
                out.append(rebuilt)
        return out, cut

    kept_left, cut_left = keep(left, drop_left)
    kept_right, cut_right = keep(right, drop_right)
    if kept_left and kept_right and len(kept_left) - 1 in cut_left and 0 in cut_right:
        # the join fell inside a sentence both chunks heard: its two halves make one segment again
        a, b = kept_left.pop(), kept_right.pop(0)
        kept_right.insert(0, {**a, "words": a["words"] + b["words"], "text": f"{a['text']} {b['text']}",
                              "end": b["end"], "timed": a["timed"] and b["timed"]})
    return kept_left, kept_right, how


def collapse_repetitions(segments: list[dict], limit: int = REPEAT_LIMIT) -> tuple[list[dict], int]:
    """Remove decoding loops: an n-gram (n ≤ MAX_NGRAM) repeated more than `limit` times in a row, across
    segments, is kept once. Returns the segments and how many words were removed."""
    flat = [(si, wi, norm(w["text"])) for si, seg in enumerate(segments) for wi, w in enumerate(seg["words"])]
    words = [t for *_, t in flat]
    dropped: set[tuple[int, int]] = set()
    i = 0
    while i < len(words):
        for n in range(1, MAX_NGRAM + 1):
            gram = words[i : i + n]
            if len(gram) < n or not any(gram):
                break
            copies = 1
            while words[i + copies * n : i + (copies + 1) * n] == gram:
                copies += 1
            if copies > limit:
                dropped.update((si, wi) for si, wi, _ in flat[i + n : i + copies * n])
                i += copies * n - 1
                break
        i += 1
    out = []
    for si, seg in enumerate(segments):
        rebuilt = _rebuild(seg, [w for wi, w in enumerate(seg["words"]) if (si, wi) not in dropped])
        if rebuilt is not None:
            out.append(rebuilt)
    return out, len(dropped)


def without_loops(segments: list[Segment]) -> tuple[list[Segment], int]:
    """One chunk's segments (chunk time) with its decoding loops kept once (`collapse_repetitions`), and how many
    words that dropped; the segments as they are when there is no loop."""
    working = [seg for seg in (_with_words(s) for s in segments if not is_annotation(s["text"])) if seg["words"]]
    collapsed, dropped = collapse_repetitions(working)
    if not dropped:
        return segments, 0
    out = []
    for seg in collapsed:
        seg = dict(seg)
        if not seg.pop("timed"):  # its words were spread over it: what is left covers only its part
            words = seg.pop("words")
            seg["start"], seg["end"] = words[0]["start"], words[-1]["end"]
        out.append(seg)
    return out, dropped


class Silences:
    """Sorted silence spans (recording seconds) with point and span lookups."""

    def __init__(self, spans: list) -> None:
        self.spans = sorted((float(s), float(e)) for s, e in spans)
        self.starts = [s for s, _ in self.spans]

    def at(self, t: float) -> tuple[float, float] | None:
        k = bisect.bisect_right(self.starts, t) - 1
        if k >= 0 and self.spans[k][0] <= t < self.spans[k][1]:
            return self.spans[k]
        return None

    def speech(self, start: float, end: float) -> float:
        """Seconds of [start, end] outside every silence."""
        covered = 0.0
        k = max(bisect.bisect_right(self.starts, start) - 1, 0)
        while k < len(self.spans) and self.spans[k][0] < end:
            covered += max(0.0, min(end, self.spans[k][1]) - max(start, self.spans[k][0]))
            k += 1
        return end - start - covered

    def holds(self, item: dict) -> bool:
        """Whether a word (or untimed segment) lies in silence: widened by WORD_SLACK_S on both sides (word
        times are approximate), under MIN_SPEECH_S of it is outside every silence."""
        return self.speech(item["start"] - WORD_SLACK_S, item["end"] + WORD_SLACK_S) < MIN_SPEECH_S

    def last_before(self, t: float) -> tuple[float, float] | None:
        """The last silence that begins at or before t."""
        k = bisect.bisect_right(self.starts, t) - 1
        return self.spans[k] if k >= 0 else None


def drop_silent(segments: list[dict], silences: Silences) -> tuple[list[dict], int]:
    """Drop segments whisper placed entirely in silence (every word in one): nothing was said there. A
    segment with any word on speech stays whole — a sentence's last word often gets a time after its end."""
    out, removed = [], 0
    for seg in segments:
        items = seg["words"] if seg["timed"] else [seg]
        if items and all(silences.holds(item) for item in items):
            removed += len(seg["words"])
        else:
            out.append(seg)
    return out, removed


def snap_to_speech(segments: list[dict], silences: Silences) -> list[dict]:
    """Move times onto the speech: a word (or untimed segment) starting inside a silence starts where the
    speech resumes, one ending inside a silence ends where the speech stopped; a segment starting up to
    SNAP_S after speech resumed, with no earlier segment reaching that point, starts there (whisper began
    it late). Segment times follow their words."""
    out: list[dict] = []
    for seg in segments:
        words = [dict(w) for w in seg["words"]]
        items = words if seg["timed"] else [{"start": seg["start"], "end": seg["end"]}]
        for item in items:
            hole = silences.at(item["start"])
            if hole is not None and hole[1] < item["end"]:
                item["start"] = hole[1]
            hole = silences.at(item["end"] - 1e-3)
            if hole is not None and item["start"] < hole[0]:
                item["end"] = hole[0]
            elif hole is not None and item["start"] >= hole[0]:  # wholly inside: onto the speech it follows
                item["start"] = item["end"] = hole[0] if item is not items[0] else hole[1]
        gap = silences.last_before(items[0]["start"])
        if gap is not None and 0 < items[0]["start"] - gap[1] <= SNAP_S and not (out and out[-1]["end"] > gap[1] + 0.05):
            items[0]["start"] = gap[1]
        start = items[0]["start"]
        out.append({**seg, "words": words, "start": start, "end": max(items[-1]["end"], start)})
    return out


def _public(seg: dict) -> dict:
    out = {"start": round(seg["start"], 3), "end": round(seg["end"], 3), "text": seg["text"].strip()}
    if seg["timed"]:
        out["words"] = [{"start": round(w["start"], 3), "end": round(w["end"], 3), "text": w["text"]} for w in seg["words"]]
    return out


def merge_chunks(chunks: list[ChunkResult], silences: list | None = None) -> dict:
    """Chunks (index, start_s, end_s, language, segments[, cut, overlap_s, silent]) → transcript with
    segments (and their words where whisper timed them), the text and a chunk map.

    `silences`: spans (recording seconds) where the chunk planner found no speech; text whisper put
    entirely inside one is dropped, and segment edges inside one are moved onto the speech.
    """
    ordered = sorted(chunks, key=lambda c: c["index"])
    segments: list[dict] = []
    chunk_map = []
    previous_end = None
    settled, settled_before = 0, float("-inf")  # segments[:settled] end by settled_before: no later splice reaches them
    for chunk in ordered:
        shifted = [_with_words(s) for s in shift_segments(chunk["segments"], chunk["start_s"], chunk.get("pieces")) if not is_annotation(s["text"])]
        shifted = [s for s in shifted if s["words"]]
        entry = {
            "index": chunk["index"],
            "start": chunk["start_s"],
            "end": chunk["end_s"],
            "cut": chunk.get("cut", "fixed"),
            "overlap": chunk.get("overlap_s", 0.0),
            "pieces": chunk.get("pieces") or [[chunk["start_s"], chunk["end_s"]]],
            "language": chunk.get("language", ""),
            "segments": len(chunk["segments"]),
        }
        if chunk.get("silent"):
            entry["silent"] = True
        if chunk.get("loop_words"):
            entry["loop_words"] = chunk["loop_words"]
        if chunk.get("heard_again"):  # recording time, as the rest of the map
            timeline = Timeline.of_chunk(chunk["start_s"], chunk.get("pieces"))
            entry["heard_again"] = [[timeline.to_recording(s), timeline.to_recording(e), words] for s, e, words in chunk["heard_again"]]
        if previous_end is not None and chunk["start_s"] < previous_end:
            reach = chunk["start_s"] - ALIGN_MARGIN_S  # splice looks at words ending after this only
            if reach < settled_before:
                settled = 0
            while settled < len(segments) and all(w["end"] <= reach for w in segments[settled]["words"]):
                settled += 1
            settled_before = reach
            segments[settled:], shifted, entry["join"] = splice(segments[settled:], shifted, (chunk["start_s"], previous_end))
        segments.extend(shifted)
        chunk_map.append(entry)
        previous_end = chunk["end_s"]
    segments, repeated = collapse_repetitions(segments)
    repeated += sum(chunk.get("loop_words", 0) for chunk in ordered)  # loops a chunk's hearing again replaced
    in_silence = 0
    if silences:
        spans = Silences(silences)
        segments, in_silence = drop_silent(segments, spans)
        segments = snap_to_speech(segments, spans)
    public = [_public(s) for s in segments if s["text"].strip()]
    return {
        "language": dominant_language(ordered),
        "segments": public,
        "text": " ".join(seg["text"] for seg in public).strip(),
        "chunks": chunk_map,
        "removed": {"repeated_words": repeated, "words_in_silence": in_silence},
    }
