"""The records that travel between a job's steps (as XCom, or as JSON in the work folder): plain dicts, typed.

validate → Job; chunk → Batch (each with its ChunkRefs); transcribe → BatchResult (a ResultRef per chunk,
pointing at the ChunkResult in the work folder); merge reads the ChunkResults. Times are in seconds:
a ChunkRef's in recording time, a ChunkResult's segments and words in the chunk's own time.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class JobOptions(TypedDict):
    """How a job is transcribed, checked (pipeline.check_params)."""

    language: str  # as asked: a language code or `auto`
    model: str
    formats: list[str]
    chunking: str  # one of audio.METHODS
    prompt: NotRequired[str]  # whisper's prompt before each chunk (whisper.check_prompt); empty: none


class Job(JobOptions):
    """A validated job (validate's result, every later step's first argument)."""

    job_id: str
    run_id: NotRequired[str]
    source: str  # the source object's URI
    etag: NotRequired[str]  # the source's content when validated: a changed object is refused
    duration_s: float
    size_bytes: int


class PlannedChunk(TypedDict):
    """One planned chunk (audio.ChunkPlan.as_dict): [start_s, end_s) of the recording made of `pieces`."""

    index: int
    start_s: float
    end_s: float
    cut: str
    overlap_s: float
    silent: bool
    pieces: list[list[float]]  # the recording spans laid end to end ([[start_s, end_s]] when one)


class ChunkRef(PlannedChunk):
    """A planned chunk cut and put in the work folder."""

    duration_s: float  # length of its audio (less than end_s - start_s when silences were shortened)
    speech_s: NotRequired[float]  # seconds of it outside the silences found (its weight in a language vote)
    uri: str  # its WAV file
    detected: NotRequired[list]  # decoded again in the job's language: what it was first detected as (ChunkResult.detected)


class Decoding(TypedDict):
    """How the chunks are decoded (pipeline.decide_language)."""

    language: str  # what whisper is told (`auto`: each chunk detects its own)
    chunk_languages: dict[str, str]  # chunk index (as text: JSON keys) → its own language, in a mixed recording
    vote: NotRequired[bool]  # each chunk detects its language (`-l auto`) and the batch votes (pipeline.decode_and_vote)


class Batch(Decoding):
    """The chunks one transcribe task sends to whisper."""

    batch: int
    chunks: list[ChunkRef]
    settling: NotRequired[bool]  # chunks decoded again, told the job's language (pipeline.settle_language): already counted done


class ResultRef(TypedDict):
    index: int
    result_uri: str  # the chunk's ChunkResult in the work folder


class BatchResult(TypedDict):
    """What a transcribe task returns: where each chunk of its batch has its result."""

    batch: int
    results: list[ResultRef]


class Word(TypedDict):
    start: float
    end: float
    text: str


class Segment(TypedDict):
    """A stretch of text whisper decoded; `words` when it timed them."""

    start: float
    end: float
    text: str
    words: NotRequired[list[Word]]


class ChunkResult(TypedDict):
    """One chunk's transcription (segment times relative to the chunk) with its place in the recording."""

    index: int
    start_s: float
    end_s: float
    cut: NotRequired[str]
    overlap_s: NotRequired[float]
    silent: NotRequired[bool]
    pieces: NotRequired[list[list[float]]]
    language: str  # decoded in (told or detected); empty when the chunk was not transcribed
    language_told: NotRequired[str]
    detected: NotRequired[list]  # [language, probability] whisper detected in the chunk (`auto`), whatever it was decoded in
    speech_s: NotRequired[float]
    segments: list[Segment]
    whisper_seconds: NotRequired[float]
    heard_again: NotRequired[list[list[float]]]  # [start, end, words] (chunk time) of stretches decoded a second time


class Merged(TypedDict):
    """What merge hands to publish: the transcript in the work folder (None when the job was already COMPLETED)."""

    transcript_uri: str | None
    segments: int
