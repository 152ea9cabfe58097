"""Audio: probe with ffprobe, decode once to 16 kHz mono PCM with ffmpeg, plan and cut chunks reading the
decoded file in blocks (memory stays flat however long the recording)."""

from __future__ import annotations

import bisect
import json
import math
import subprocess
import wave
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from stt import procs
from stt.errors import InvalidAudio, TransientError
from stt.records import PlannedChunk

if TYPE_CHECKING:  # numpy and pydub are imported where used: DAG parsing imports this module
    import numpy as np

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
    """One chunk of the decoded audio: [start_s, end_s) in recording time and how its cut was chosen.

    `pieces`: the recording spans the chunk's audio is made of, in order, when long silences inside it
    were shortened (see `kept_spans`); empty means the one span [start_s, end_s).
    """

    index: int
    start_s: float
    end_s: float
    cut: str = "fixed"  # how its end was chosen: silence | vad | forced | fixed | end (of the recording)
    overlap_s: float = 0.0  # seconds it shares with the next chunk (forced and fixed cuts only)
    silent: bool = False  # nothing audible in it (SILENT_PEAK_DB): transcribing it is skipped
    pieces: tuple[tuple[float, float], ...] = ()

    @property
    def spans(self) -> tuple[tuple[float, float], ...]:
        return self.pieces or ((self.start_s, self.end_s),)

    @property
    def duration_s(self) -> float:
        """Length of the chunk's audio."""
        return round(sum(e - s for s, e in self.spans), 3)

    def as_dict(self) -> PlannedChunk:
        return {**asdict(self), "pieces": [list(p) for p in self.spans]}


# ffmpeg and ffprobe read plain local files only: no network or other protocols, and only media demuxers, so a
# crafted file (an HLS playlist, a concat list, an image sequence) cannot make them open anything else.
PROTOCOL_WHITELIST = "file"
FORMAT_WHITELIST = ",".join((
    "wav", "w64", "mp3", "flac", "ogg", "matroska", "mov", "aac", "aiff", "amr", "amrnb", "amrwb", "asf", "avi", "caf",
    "au", "wv", "ape", "mpeg", "mpegts", "flv", "dv", "voc", "rm", "tta", "dsf", "mpc", "mpc8", "ac3", "eac3", "dts", "truehd",
))
SAFE_INPUT = ("-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST)


def _input(path: Path) -> str:
    """A local path as ffmpeg input: with `file:` so no part of the name is read as a protocol."""
    return f"file:{path}"


def _run(cmd: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess:
    try:
        return procs.run(cmd, timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"{what} took longer than {timeout_s:.0f}s", code="DECODE_TIMEOUT") from exc


def probe(path: Path, timeout_s: float = 60.0) -> AudioInfo:
    """Read container and first audio stream; InvalidAudio when there is no decodable audio."""
    if path.stat().st_size == 0:
        raise InvalidAudio("the file is empty (0 bytes)", code="EMPTY_FILE")
    proc = _run(
        ["ffprobe", "-v", "error", *SAFE_INPUT, "-print_format", "json", "-show_format", "-show_streams", _input(path)],
        timeout_s,
        "ffprobe",
    )
    if proc.returncode != 0:
        log = proc.stderr.decode(errors="replace")
        if "not on whitelist" in log:
            raise InvalidAudio("the file is a playlist, file list or other container that refers to other files or protocols, "
                               "not plain media: refused", code="UNSUPPORTED_CONTAINER")
        detail = log.strip().splitlines()[-1:] or ["no detail"]
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


def decode_to_wav(src: Path, dest: Path, timeout_s: float, max_s: float | None = None) -> Path:
    """Decode any input once to 16 kHz mono 16-bit WAV (the only format whisper.cpp needs). With `max_s`,
    decoding stops just past that many seconds (a header may understate the length: the caller checks
    what was decoded)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.stem + ".part.wav")
    limit = ("-t", f"{max_s + 1:.3f}") if max_s else ()
    try:
        proc = _run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *SAFE_INPUT, "-i", _input(src), "-map", "0:a:0", "-vn",
             "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", *limit, "-f", "wav", str(partial)],
            timeout_s,
            "ffmpeg decode",
        )
        if proc.returncode != 0 or not partial.exists() or partial.stat().st_size <= 44:
            detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio decoded"]
            raise InvalidAudio(f"the audio could not be decoded: {detail[0]}", code="CORRUPT_AUDIO")
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def plan_fixed_chunks(duration_s: float, chunk_s: float, overlap_s: float = 0.0) -> list[ChunkPlan]:
    """Split [0, duration) into equal chunks of at most `chunk_s` (no sliver at the end).

    With `overlap_s`, neighbouring chunks share that many seconds around each cut (half on each side,
    counted in the chunk length), so that a word cut in two at one chunk's edge is heard whole by the
    other; the merge keeps one copy.
    """
    duration_s = float(duration_s)
    if duration_s <= 0:
        return []
    overlap = min(overlap_s, chunk_s / 2)
    count = max(1, math.ceil((duration_s - overlap) / (chunk_s - overlap) - 1e-9))
    step = (duration_s - overlap) / count if count > 1 else duration_s
    half = overlap / 2 if count > 1 else 0.0
    cuts = [half + i * step for i in range(1, count)]
    bounds = [0.0, *cuts, duration_s]
    return [
        ChunkPlan(
            i,
            round(max(0.0, bounds[i] - (half if i else 0.0)), 3),
            round(min(duration_s, bounds[i + 1] + (half if i < count - 1 else 0.0)), 3),
            "fixed" if i < count - 1 else "end",
            round(2 * half, 3) if i < count - 1 else 0.0,
        )
        for i in range(count)
    ]


# --- silence analysis on the decoded 16 kHz samples --------------------------------------------------

FRAME_S = 0.01  # one level per 10 ms
SILENT_PEAK_DB = -50.0  # a chunk whose loudest 10 ms frame is quieter than this...
SILENT_OVER_FLOOR_DB = 10.0  # ...and than this over the noise floor holds nothing to transcribe


BLOCK_SAMPLES = 10 * SAMPLE_RATE  # samples read at a time (a whole number of frames)


class Recording:
    """16 kHz mono 16-bit samples, read in blocks: from a decoded WAV file (never loaded whole) or, for
    short recordings and tests, from memory."""

    def __init__(self, samples: int, *, path: Path | None = None, offset: int = 0, memory: np.ndarray | None = None) -> None:
        self.samples, self.path, self.offset, self.memory = samples, path, offset, memory

    @classmethod
    def open(cls, wav: Path | str) -> Recording:
        """A 16 kHz mono 16-bit PCM WAV file (what `decode_to_wav` writes), its samples left on disk."""
        offset, count = _wav_data(Path(wav))
        return cls(count, path=Path(wav), offset=offset)

    @classmethod
    def of(cls, segment) -> Recording:
        """A pydub AudioSegment held in memory, as 16 kHz mono 16-bit."""
        import numpy as np

        if (segment.frame_rate, segment.channels, segment.sample_width) != (SAMPLE_RATE, 1, 2):
            segment = segment.set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        return cls(len(segment.raw_data) // 2, memory=np.frombuffer(segment.raw_data, dtype=np.int16))

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) (clipped to the recording) as int16; callers keep the span bounded."""
        import numpy as np

        start, end = max(0, start), min(end, self.samples)
        if end <= start:
            return np.zeros(0, dtype=np.int16)
        if self.memory is not None:
            return self.memory[start:end]
        with open(self.path, "rb") as f:
            f.seek(self.offset + 2 * start)
            return np.fromfile(f, dtype="<i2", count=end - start)

    def blocks(self, start: int = 0, end: int | None = None, size: int = BLOCK_SAMPLES) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample, samples) of [start, end) in blocks of at most `size` samples."""
        end = self.samples if end is None else min(end, self.samples)
        for at in range(start, end, size):
            yield at, self.read(at, min(at + size, end))


def _wav_data(path: Path) -> tuple[int, int]:
    """(byte offset, sample count) of the samples of a 16 kHz mono 16-bit PCM WAV file; ValueError for another format."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path} is not a WAV file")
        fmt = None
        while len(chunk := f.read(8)) == 8:
            kind, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"fmt ":
                fmt = f.read(length)
                f.seek(length % 2, 1)
            elif kind == b"data":
                offset = f.tell()
                if fmt is None or fmt[:2] not in (b"\x01\x00", b"\xfe\xff") or int.from_bytes(fmt[2:4], "little") != 1 \
                        or int.from_bytes(fmt[4:8], "little") != SAMPLE_RATE or int.from_bytes(fmt[14:16], "little") != 16:
                    raise ValueError(f"{path} is not 16 kHz mono 16-bit PCM")
                available = size - offset
                return offset, (available if length in (0, 0xFFFFFFFF) or length > available else length) // 2
            else:
                f.seek(length + length % 2, 1)
    raise ValueError(f"{path} has no audio data")


def recording(audio) -> Recording:
    """A Recording of a decoded WAV (path), an AudioSegment or a Recording."""
    if isinstance(audio, Recording):
        return audio
    if isinstance(audio, (str, Path)):
        return Recording.open(audio)
    return Recording.of(audio)


def load(wav: Path):
    """The decoded WAV loaded whole as a pydub AudioSegment: for short recordings only (the chunk step
    reads the file in blocks through `Recording.open`)."""
    from pydub import AudioSegment

    audio = AudioSegment.from_wav(wav)
    if (audio.frame_rate, audio.channels, audio.sample_width) != (SAMPLE_RATE, 1, 2):
        audio = audio.set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
    return audio


def frame_levels(audio) -> np.ndarray:
    """RMS level in dBFS of every 10 ms frame, as float32, computed block by block (a numpy pass over the
    samples: ~12x faster than pydub.silence.detect_silence, which re-measures a sliding window at every step)."""
    import numpy as np

    source = recording(audio)
    size = int(SAMPLE_RATE * FRAME_S)
    levels = np.empty(-(-source.samples // size), dtype=np.float32)
    for at, block in source.blocks():
        samples = block.astype(np.float32) / 32768.0
        count = -(-len(samples) // size)
        padded = np.zeros(count * size, dtype=np.float32)
        padded[: len(samples)] = samples
        power = (padded.reshape(count, size) ** 2).mean(axis=1)
        levels[at // size : at // size + count] = 10.0 * np.log10(np.maximum(power, 1e-10))
    return levels


LOCAL_WINDOW_S = 10.0  # the speech level is measured this far on each side of every moment
LOCAL_STEP_S = 1.0  # ...every this many seconds, interpolated in between
FLOOR_MARGIN_DB = (6.0, 12.0)  # silence lies at least the first and at most the second this far over the noise floor...
SPEECH_CONTRAST_DB = 25.0  # ...and always at least this far under the speech level of the loudest stretch


def local_percentiles(levels, percentiles: tuple[float, ...], window_s: float = LOCAL_WINDOW_S, step_s: float = LOCAL_STEP_S):
    """Every `step_s`, the given percentiles of the levels within `window_s` on each side (one row each, float32;
    each value holds for the `step_s` of frames it starts); a recording shorter than the window gets its own."""
    import numpy as np

    levels = np.asarray(levels, dtype=np.float32)
    half, step = int(window_s / FRAME_S), max(1, int(step_s / FRAME_S))
    centres = range(0, len(levels), step)
    values = np.empty((len(percentiles), len(centres)), dtype=np.float32)
    for i, centre in enumerate(centres):
        lo = max(0, min(centre - half, len(levels) - 2 * half))
        values[:, i] = np.percentile(levels[lo : lo + 2 * half], percentiles)
    return values


FLOOR_BLOCK_S = 0.3  # the noise floor is measured on the power of blocks this long (10 ms frames of noise scatter)...
FRAME_SCATTER_DB = 10.0  # ...and is never more than this over the 10th percentile of the 10 ms frames


def noise_floor(levels) -> float:
    """The recording's noise floor (dB): the 10th percentile of its level over FLOOR_BLOCK_S blocks (10 ms frames
    of room tone or hiss scatter by ±10 dB; 0.3 s of it is steady), but at most FRAME_SCATTER_DB over the 10th
    percentile of its 10 ms frames (in speech without pauses, the quietest blocks are still speech)."""
    import numpy as np

    levels = np.asarray(levels, dtype=np.float32)
    if not len(levels):
        return -100.0
    size = max(1, int(round(FLOOR_BLOCK_S / FRAME_S)))
    usable = max(size, len(levels) - len(levels) % size) if len(levels) >= size else len(levels)
    blocks = []
    for at in range(0, usable, 10_000 * size):  # block by block: no copy of the whole recording's levels
        part = levels[at : min(at + 10_000 * size, usable)]
        power = (10.0 ** (part.reshape(-1, min(size, len(part))) / 10.0)).mean(axis=1)
        blocks.append(10.0 * np.log10(np.maximum(power, 1e-10)))
    frames = float(np.percentile(levels[:: max(1, len(levels) // 200_000)], 10))
    return min(float(np.percentile(np.concatenate(blocks), 10)), frames + FRAME_SCATTER_DB)


def silence_threshold(levels, below_speech_db: float):
    """The level under which each frame counts as silence: `below_speech_db` under the local speech level
    (95th percentile of the frames within LOCAL_WINDOW_S), but between 6 and 12 dB over the recording's noise
    floor (`noise_floor`), and at least SPEECH_CONTRAST_DB under the speech level of the recording's loudest
    stretch when that is loud enough to be speech (SILENT_PEAK_DB). Silence means no speech, not quieter
    speech: a far or quiet talker next to a loud one, a level that steps down, a fade, all stay well over
    the noise floor and are kept; in a noisy recording, where speech stands less than about 30 dB over its
    noise (and its quietest stretches, which set the floor, are still speech), little or nothing is
    confidently silence and the audio is kept; a recording with no dynamics (steady noise, room tone) has
    next to no silence by this measure, and the silent-chunk check decides instead. Returns one threshold
    (dB, float32) per LOCAL_STEP_S, holding for its frames."""
    import numpy as np

    if not len(levels):
        return np.zeros(0, dtype=np.float32)
    floor = noise_floor(levels)
    (speech,) = local_percentiles(levels, (95,))
    low, high = FLOOR_MARGIN_DB
    threshold = speech - below_speech_db
    np.minimum(threshold, floor + high, out=threshold)
    np.maximum(threshold, floor + low, out=threshold)
    loudest = float(speech.max())
    if loudest >= SILENT_PEAK_DB:  # the loudest stretch may be speech (room tone alone never reaches it)
        np.minimum(threshold, loudest - SPEECH_CONTRAST_DB, out=threshold)
    return threshold


BLIP_DB = 6.0  # a stretch above the threshold peaking less than this over it is room tone, not speech...
BLIP_S = 1.0  # ...when it lasts under this


def detect_silences(levels, threshold_db, min_silence_s: float, bridge_s: float = 0.05) -> list[tuple[float, float]]:
    """Runs of frames under the threshold lasting at least `min_silence_s`, as (start_s, end_s). The threshold is
    one level for all frames, or one per LOCAL_STEP_S (`silence_threshold`). What rises above it only briefly
    does not break a silence: a click (under `bridge_s`), or a swell of room tone or hum (under BLIP_S and
    never BLIP_DB over the threshold; speech peaks far higher). Works on arrays throughout, without a copy
    of the levels: room tone can rise over the threshold a hundred thousand times in a long recording."""
    import numpy as np

    levels = np.asarray(levels, dtype=np.float32)
    if not len(levels):
        return []
    coarse = np.atleast_1d(np.asarray(threshold_db, dtype=np.float32))
    step = max(1, int(round(LOCAL_STEP_S / FRAME_S))) if len(coarse) > 1 else max(1, len(levels))
    quiet = np.empty(len(levels), dtype=bool)
    whole = len(levels) // step * step
    np.less(levels[:whole].reshape(-1, step), coarse[: whole // step, None], out=quiet[:whole].reshape(-1, step))
    np.less(levels[whole:], coarse[min(whole // step, len(coarse) - 1)], out=quiet[whole:])
    starts, ends = _runs(quiet, of=False)
    if len(starts):
        bounds = np.empty(2 * len(starts), dtype=np.int64)
        bounds[0::2], bounds[1::2] = starts, np.minimum(ends, len(levels) - 1)
        # how far each run rises over the threshold where it starts; a run ending the recording is never bridged
        peaks = np.maximum.reduceat(levels, bounds)[0::2] - coarse[np.minimum(starts // step, len(coarse) - 1)]
        del bounds
        lengths = ends - starts
        bridge, blip = int(round(bridge_s / FRAME_S)), int(round(BLIP_S / FRAME_S))
        brief = (starts > 0) & (ends < len(quiet)) & ((lengths < bridge) | ((lengths < blip) & (peaks < BLIP_DB)))
        for s, e in zip(starts[brief], ends[brief]):  # one pair at a time: no list of a hundred thousand pairs
            quiet[s:e] = True
    starts, ends = _runs(quiet)
    long_enough = ends - starts >= max(1, int(round(min_silence_s / FRAME_S)))
    return [(round(s * FRAME_S, 3), round(e * FRAME_S, 3)) for s, e in zip(starts[long_enough].tolist(), ends[long_enough].tolist())]


def _runs(mask, of: bool = True):
    """[start, end) frame indexes of the runs of `of` in a boolean mask, as two arrays (no copy of the mask)."""
    import numpy as np

    outside = np.int8(not of)
    edges = np.flatnonzero(np.diff(np.asarray(mask).view(np.int8), prepend=outside, append=outside))
    return edges[0::2], edges[1::2]


def speech_to_silences(speech: list[tuple[float, float]], duration_s: float, min_silence_s: float) -> list[tuple[float, float]]:
    """The gaps between speech spans (e.g. from a VAD), at least `min_silence_s` long."""
    gaps, cursor = [], 0.0
    for start, end in sorted(speech):
        if start - cursor >= min_silence_s:
            gaps.append((round(cursor, 3), round(start, 3)))
        cursor = max(cursor, end)
    if duration_s - cursor >= min_silence_s:
        gaps.append((round(cursor, 3), round(duration_s, 3)))
    return gaps


# --- chunk planning ----------------------------------------------------------------------------------

SILENCE_PAD_S = 0.1  # a cut stays this far inside a silence (or in its middle when shorter)
FORCED_SEARCH_S = 2.0  # a forced cut looks this far back from its target for the quietest 10 ms
SILENCE_BONUS_CAP_S = 1.0


def plan_silence_chunks(
    duration_s: float,
    silences: list[tuple[float, float]],
    *,
    target_s: float,
    min_s: float,
    max_s: float,
    overlap_s: float,
    levels=None,
    cut_kind: str = "silence",
) -> list[ChunkPlan]:
    """Cut [0, duration) inside silences so that every chunk lasts between `min_s` (at most half of
    `target_s`) and `max_s`, close to `target_s`, in the middle of the silence, longer silences preferred; where no silence fits, cut at
    the quietest 10 ms near the target (`forced`) and let the two chunks share `overlap_s` around it.
    Audio shorter than the minimum is one chunk. Work is in whole milliseconds so that bounds never drift.
    """
    D = int(round(duration_s * 1000))
    if D <= 0:
        return []
    max_ms = max(1, int(round(max_s * 1000)))
    target_ms = max(1, min(int(round(target_s * 1000)), max_ms))
    min_ms = min(int(round(min_s * 1000)), target_ms // 2)  # a minimum never stands in the way of the target
    half = min(int(round(overlap_s * 1000)), min_ms) // 2
    spans = [(int(round(s * 1000)), int(round(e * 1000))) for s, e in silences]
    pad_ms = int(SILENCE_PAD_S * 1000)

    cuts: list[tuple[int, str, int]] = []  # (cut point, kind, half overlap)
    start = 0
    while True:
        remaining = D - start
        if remaining <= max_ms and (remaining <= target_ms or remaining < 2 * min_ms):
            break
        lo, hi = start + min_ms, min(start + max_ms, D - min_ms)
        best = None
        for s, e in spans:
            pad = min(pad_ms, (e - s) // 2)
            a, b = max(lo, s + pad), min(hi, e - pad)
            if a > b:
                continue
            c = min(max((s + e) // 2, a), b)
            bonus = min(e - s, SILENCE_BONUS_CAP_S * 1000) / (2 * SILENCE_BONUS_CAP_S * 1000)
            score = bonus - abs(c - start - target_ms) / target_ms
            if best is None or score > best[0]:
                best = (score, c)
        if best is not None:
            cuts.append((best[1], cut_kind, 0))
            start = best[1]
            continue
        hi_forced = min(start + max_ms - half, D - min_ms - half)
        goal = max(min(start + target_ms - half, hi_forced), lo)
        c = _quietest(levels, max(lo, goal - int(FORCED_SEARCH_S * 1000)), goal)
        cuts.append((c, "forced", half))
        start = c - half

    plans, begin, begin_half = [], 0, 0
    for index, (c, kind, h) in enumerate([*cuts, (D, "end", 0)]):
        plans.append(ChunkPlan(index, (begin - begin_half) / 1000, (c + h) / 1000, kind, 2 * h / 1000))
        begin, begin_half = c, h
    return plans


def _quietest(levels, lo_ms: int, hi_ms: int) -> int:
    """The quietest point (50 ms average) in [lo, hi] ms; `hi` when the levels are unknown."""
    if levels is None or hi_ms <= lo_ms:
        return hi_ms
    import numpy as np

    frames = np.asarray(levels)
    a, b = int(lo_ms / 1000 / FRAME_S), min(int(hi_ms / 1000 / FRAME_S), len(frames))
    if b - a < 1:
        return hi_ms
    # smoothed over [a, b) only, with the 2 frames on each side the average needs (the same figures as
    # smoothing the whole recording: every forced cut stays a small piece of work)
    lo = max(a - 2, 0)
    hi = min(max(b + 2, lo + 5), len(frames))
    lo = max(min(lo, hi - 5), 0)
    smooth = np.convolve(10 ** (frames[lo:hi] / 10), np.ones(5) / 5, mode="same")[a - lo : b - lo]
    return int(round((a + int(np.argmin(smooth)) + 0.5) * FRAME_S * 1000))


SHORTEN_MIN_S = 2.0  # a silence is shortened only when that leaves out at least this much


def kept_spans(duration_s: float, silences: list[tuple[float, float]], keep_s: float) -> list[tuple[float, float]]:
    """The recording spans to transcribe: everything except the inside of silences longer than 2 × `keep_s`
    + SHORTEN_MIN_S, of which `keep_s` stays on each side (at the start and end of the recording: next to the
    speech only). Leaving out less would save whisper next to nothing and risk a word at the noise floor.
    So chunks hold speech with natural pauses of at most 2 × keep_s + SHORTEN_MIN_S: whisper hears more speech per
    window (more context) and no long silence to invent text over. A recording that is all silence keeps
    its first 2 × keep_s. keep_s ≤ 0 keeps everything."""
    if keep_s <= 0 or duration_s <= 0:
        return [(0.0, round(duration_s, 3))]
    spans, cursor = [], 0.0
    for s, e in sorted(silences):
        cut_from = s + keep_s if s > 0 else 0.0
        cut_to = e - keep_s if e < duration_s else duration_s
        if s <= 0 and e >= duration_s:
            return [(0.0, round(min(duration_s, 2 * keep_s), 3))]
        if cut_to - cut_from >= SHORTEN_MIN_S and cut_from >= cursor:
            if cut_from > cursor:
                spans.append((round(cursor, 3), round(cut_from, 3)))
            cursor = cut_to
    if duration_s > cursor:
        spans.append((round(cursor, 3), round(duration_s, 3)))
    return spans


class Timeline:
    """Spans of the recording laid end to end (the chunks' time) against recording time, both ways: the
    planner's kept spans, or one chunk's pieces (`of_chunk`)."""

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        """`spans`: in order, not overlapping (as `kept_spans` gives them); the last may end at infinity."""
        self.spans = [(float(s), float(e)) for s, e in spans]
        self.ends = [e for _, e in self.spans]
        self.offsets, total = [], 0.0
        for s, e in self.spans:
            self.offsets.append(total)
            total += e - s
        self.length = round(total, 3)

    @classmethod
    def of_chunk(cls, start_s: float, pieces=None) -> Timeline:
        """A chunk's own time: its `pieces` (recording spans) laid end to end, or the recording from `start_s` on."""
        return cls(pieces or [(start_s, math.inf)])

    def to_virtual(self, t: float) -> float:
        """A recording time on the chunks' time (a removed stretch is one point)."""
        k = bisect.bisect_left(self.ends, t)  # the first span ending at or after t
        if k == len(self.spans):
            return self.length
        (s, _), off = self.spans[k], self.offsets[k]
        return round(off, 3) if t < s else round(off + t - s, 3)

    def to_recording(self, v: float) -> float:
        """A time on the chunks' time in the recording: in the span it falls in (before the first: the first's
        start that far earlier; past the end: the last span continued)."""
        k = max(bisect.bisect_right(self.offsets, v) - 1, 0)
        return round(self.spans[k][0] + v - self.offsets[k], 3)

    def pieces(self, v0: float, v1: float) -> tuple[tuple[float, float], ...]:
        """The recording spans making up [v0, v1) of the chunks' time."""
        out = []
        for k in range(max(bisect.bisect_right(self.offsets, v0) - 1, 0), len(self.spans)):
            (s, e), off = self.spans[k], self.offsets[k]
            if off >= v1:
                break
            a, b = max(v0, off), min(v1, off + e - s)
            if b - a > 1e-6:
                out.append((round(s + a - off, 3), round(s + b - off, 3)))
        return tuple(out)

    def levels(self, levels):
        """The 10 ms levels of the kept spans, laid end to end."""
        import numpy as np

        return np.concatenate([np.asarray(levels)[int(round(s / FRAME_S)) : int(round(e / FRAME_S))] for s, e in self.spans])


def mark_silent(plans: list[ChunkPlan], levels, silences: list[tuple[float, float]] = ()) -> list[ChunkPlan]:
    """Flag chunks with nothing to transcribe: lying wholly inside the silences found, or whose loudest 10 ms
    stays both under SILENT_PEAK_DB and within SILENT_OVER_FLOOR_DB of the recording's noise floor (a quiet
    talker in a quiet room is not silence). whisper is not run on them (it could only invent text there)."""
    import numpy as np

    frames = np.asarray(levels)
    audible = min(SILENT_PEAK_DB, noise_floor(frames) + SILENT_OVER_FLOOR_DB)
    out = []
    for plan in plans:
        inside = [frames[int(s / FRAME_S) : int(np.ceil(e / FRAME_S))] for s, e in plan.spans]
        peak = max((float(x.max()) for x in inside if len(x)), default=-100.0)
        quiet = all(any(a <= s and e <= b for a, b in silences) for s, e in plan.spans)
        out.append(replace(plan, silent=quiet or peak < audible))
    return out


def union_s(spans) -> float:
    """Seconds covered by a set of (start, end) spans that may overlap."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@dataclass(frozen=True)
class Plan:
    """A chunking of one recording: the chunks, the silences found, and how they were found."""

    method: str
    duration_s: float
    threshold_db: float | None  # the median of the per-frame silence thresholds
    silences: list[tuple[float, float]]
    chunks: list[ChunkPlan]

    def removed(self) -> dict:
        """Seconds of the recording whisper never hears, and why: long silences shortened out of the
        chunks, and chunks found silent."""
        heard = union_s(span for c in self.chunks if not c.silent for span in c.spans)
        shortened = self.duration_s - union_s(span for c in self.chunks for span in c.spans)
        return {"seconds": round(self.duration_s - heard, 2), "long_silences_s": round(max(shortened, 0.0), 2),
                "silent_chunks_s": round(max(self.duration_s - heard - shortened, 0.0), 2)}

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "duration_s": self.duration_s,
            "threshold_db": None if self.threshold_db is None else round(self.threshold_db, 1),
            "silences": [list(s) for s in self.silences],
            "removed": self.removed(),
            "chunks": [c.as_dict() for c in self.chunks],
        }


METHODS = ("silence", "fixed", "vad")


def plan_chunks(
    audio,
    method: str,
    *,
    target_s: float,
    min_s: float,
    max_s: float,
    overlap_s: float,
    min_silence_s: float,
    below_speech_db: float,
    keep_silence_s: float = 0.0,
    vad: Callable[[], list[tuple[float, float]]] | None = None,
) -> Plan:
    """Plan the chunks of a decoded 16 kHz mono recording (a Recording, a WAV path or an AudioSegment) with one of METHODS.

    - `silence`: cut in the middle of silences found on the samples (level relative to the recording),
      long silences shortened to 2 × `keep_silence_s` inside the chunks (`kept_spans`);
    - `vad`: the same, with the silences between the speech spans of `vad()` (whisper.cpp's Silero VAD);
    - `fixed`: equal contiguous chunks of `target_s`, neighbours overlapping by `overlap_s`.
    The silences are returned as well: the merge drops text that whisper puts entirely inside one.
    """
    import numpy as np

    if method not in METHODS:
        raise ValueError(f"unknown chunking method {method!r}; choose one of {', '.join(METHODS)}")
    levels = frame_levels(audio)
    duration = round(recording(audio).samples / SAMPLE_RATE, 3)
    median = None
    if method == "vad":
        if vad is None:
            raise ValueError("vad chunking needs a speech detector")
        silences = speech_to_silences(vad(), duration, min_silence_s)
    else:
        threshold = silence_threshold(levels, below_speech_db)
        median = float(np.median(threshold)) if len(levels) else None
        silences = detect_silences(levels, threshold, min_silence_s)
        del threshold
    if method == "fixed":
        chunks = plan_fixed_chunks(duration, target_s, overlap_s)
    else:
        timeline = Timeline(kept_spans(duration, silences, keep_silence_s))
        on_timeline = [(timeline.to_virtual(s), timeline.to_virtual(e)) for s, e in silences]
        virtual = plan_silence_chunks(timeline.length, [(s, e) for s, e in on_timeline if e > s], target_s=target_s,
                                      min_s=min_s, max_s=max_s, overlap_s=overlap_s, levels=timeline.levels(levels), cut_kind=method)
        chunks = []
        for c in virtual:
            pieces = timeline.pieces(c.start_s, c.end_s)
            chunks.append(replace(c, start_s=pieces[0][0], end_s=pieces[-1][1], pieces=pieces if len(pieces) > 1 else ()))
    return Plan(method, duration, median, silences, mark_silent(chunks, levels, silences))


def cut_chunks(wav, plans: list[ChunkPlan], out_dir: Path) -> list[Path]:
    """Write each planned chunk of an already-decoded recording (a WAV path, a Recording or an AudioSegment)
    as its own WAV file (no re-decode): its pieces laid end to end, copied in blocks. Silent chunks are
    written too. Span edges fall on whole milliseconds, except that a span reaching the recording's end takes it to its
    last sample (a one-chunk job hears exactly what whisper-cli on the whole file hears)."""
    source = recording(wav)
    length_ms = round(1000 * source.samples / SAMPLE_RATE)
    per_ms = SAMPLE_RATE // 1000
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for plan in plans:
        path = out_dir / f"chunk-{plan.index:05d}.wav"
        ranges = [(per_ms * min(int(round(s * 1000)), length_ms), source.samples if round(e * 1000) >= length_ms else per_ms * int(round(e * 1000)))
                  for s, e in plan.spans]
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.setnframes(sum(max(0, end - start) for start, end in ranges))
            for start, end in ranges:
                for _, block in source.blocks(start, end):
                    out.writeframesraw(block.astype("<i2", copy=False).tobytes())
        files.append(path)
    return files
