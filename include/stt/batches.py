"""Group a job's chunks into transcription batches: one mapped `transcribe` task (one whisper-cli process) each.

Why batches and not one task per chunk (measured, docs/benchmarks/speed.md): an Airflow task costs about a second of
scheduling and start-up and a whisper-cli process a model load, while a chunk of speech costs 1.5-3 s of
whisper on one thread; a task per 30 s chunk spends a third of the machine on orchestration. So a job
gets as many batches as there are whisper slots to keep busy (`lanes`), `rounds` per slot when each still
holds `min_s` (whisper's time per second of speech varies from chunk to chunk, so equal batches do not end
together; with two per slot, a slot whose first batch ran fast takes the next), split further only to keep each
batch at most `max_s` of speech (bounded task time) in whole rounds of `lanes`, and never split into batches shorter
than `min_s` (a short recording is one task: at volume, other jobs fill the other slots). Chunks stay the
unit of progress and of retry inside a batch; the merge orders them by index.
"""

from __future__ import annotations

import math

from stt.records import ChunkRef


def batch_count(speech_s: float, audible_chunks: int, *, lanes: int, max_s: float, min_s: float, rounds: int = 1) -> int:
    """How many batches for this much speech: enough for `lanes` parallel slots when each gets at least
    `min_s`, `rounds` batches per slot when each still gets that much (a slot whose batches ran fast takes
    the next one); when a batch would exceed `max_s`, more, in whole rounds of `lanes` (so no slot idles while
    one batch finishes alone); at least 1, at most one per audible chunk."""
    full_rounds = min(rounds, math.floor(speech_s / (min_s * lanes)))
    wanted = lanes * full_rounds if full_rounds >= 1 else max(min(lanes, math.floor(speech_s / min_s)), 1)
    if speech_s > wanted * max_s:
        wanted = lanes * math.ceil(speech_s / max_s / lanes)
    return max(1, min(wanted, audible_chunks))


def plan_batches(chunks: list[ChunkRef], *, lanes: int, max_s: float, min_s: float, rounds: int = 1) -> list[list[ChunkRef]]:
    """Deal chunks (dicts with `index`, `duration_s` and `silent`) out to batches of about equal speech, longest
    chunk first, each to the batch with the least speech so far (LPT: with the whisper time of each chunk of the
    10-minute benchmark recording alone, the slower of two batches 80.4 s against 82.5 s dealing in recording
    order). A silent chunk weighs nothing (it is not sent to whisper). Chunks are in recording order inside a batch."""
    if not chunks:
        return []
    weights = [0.0 if c.get("silent") else float(c["duration_s"]) for c in chunks]
    count = batch_count(sum(weights), sum(w > 0 for w in weights), lanes=lanes, max_s=max_s, min_s=min_s, rounds=rounds)
    batches: list[list[int]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for position in sorted(range(len(chunks)), key=lambda i: (-weights[i], i)):
        lightest = min(range(count), key=lambda b: (loads[b], len(batches[b])))
        batches[lightest].append(position)
        loads[lightest] += weights[position]
    return [[chunks[i] for i in sorted(b)] for b in batches if b]
