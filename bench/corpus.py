"""Generate the accuracy corpus: espeak-ng and real speech, silence and noise with known text and speech times.

    python -m bench.corpus [--force]      # prints the manifest path

Files are written once to `$STT_CACHE_DIR/corpus/v<GENERATOR_VERSION>/` (default `~/.cache/stt-pipeline`),
with `manifest.json` listing per file: name, path, language, reference text, kind, duration and the
spans where speech really is (the generator places every utterance, so it knows). Besides espeak-ng speech,
recordings made of the real clips of bench.speech at the levels and in the conditions of real meetings and
calls: a level that steps down 20 or 30 dB, a quiet talker alternating with a loud one, a fade, a steady
noise floor, a telephone line, short utterances between long pauses, a 10-minute monologue. Bump
GENERATOR_VERSION whenever the output would change. Needs `espeak-ng` and `sox` (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from bench import texts
from bench import speech
from bench.speech import JFK_TEXT, JFK_WAV, SR, cache_root

GENERATOR_VERSION = 6


def corpus_dir() -> Path:
    return cache_root() / "corpus" / f"v{GENERATOR_VERSION}"


def _require_tools() -> None:
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `bash scripts/setup.sh` (Debian packages espeak-ng, sox)")


def synth(text: str, voice: str, speed: int, work: Path) -> np.ndarray:
    """Speak `text` with espeak-ng, resample to 16 kHz with sox, trim leading/trailing silence exactly."""
    raw, resampled = work / "espeak.wav", work / "speech16k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(resampled)], check=True, capture_output=True)
    samples = read_wav(resampled)
    loud = np.flatnonzero(np.abs(samples) > 10 ** (-50 / 20))
    return samples[loud[0] : loud[-1] + 1]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def pink_noise(n: int, rms_db: float, rng: np.random.Generator) -> np.ndarray:
    """1/f noise at an RMS level in dBFS (room tone, hiss, rumble)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (rms_db / 20)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SR)), dtype=np.float32)


class Track:
    """Builds a recording piece by piece and remembers where each utterance is (seconds)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.length = 0
        self.speech: list[list[float]] = []

    def pause(self, seconds: float) -> None:
        self.add(silence(seconds))

    def say(self, samples: np.ndarray) -> None:
        self.speech.append([round(self.length / SR, 3), round((self.length + len(samples)) / SR, 3)])
        self.add(samples)

    def add(self, samples: np.ndarray) -> None:
        self.parts.append(samples)
        self.length += len(samples)

    def audio(self, room_tone_db: float | None, rng: np.random.Generator) -> np.ndarray:
        out = np.concatenate(self.parts)
        if room_tone_db is not None:
            out = out + pink_noise(len(out), room_tone_db, rng)
        return out


def monologue(work: Path, rng) -> tuple[np.ndarray, dict]:
    track = Track()
    track.pause(0.6)
    for paragraph in texts.MONOLOGUE:
        track.say(synth(paragraph, "en-us", 135, work))
        track.pause(float(rng.uniform(0.7, 1.4)))
    return track.audio(-62, rng), {"reference": " ".join(texts.MONOLOGUE), "speech": track.speech}


LONG_GAPS = [5.0, 12.0, 30.0, 8.0, 20.0, 15.0]


def long_silences(work: Path, rng) -> tuple[np.ndarray, dict]:
    track = Track()
    track.pause(3.0)
    for i, sentence in enumerate(texts.UTTERANCES):
        track.say(synth(sentence, "en-us", 155, work))
        track.pause(LONG_GAPS[i] if i < len(LONG_GAPS) else 4.0)
    return track.audio(-60, rng), {"reference": " ".join(texts.UTTERANCES), "speech": track.speech}


def boundary_stress(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Back-to-back unpunctuated speech (two voices, no pause longer than a stop consonant)."""
    track = Track()
    track.pause(0.3)
    for i, paragraph in enumerate(texts.BOUNDARY_STRESS):
        track.say(synth(paragraph, "en-us" if i < 4 else "en-us+f3", 165, work))
        track.pause(0.05)
    return track.audio(-62, rng), {"reference": " ".join(texts.BOUNDARY_STRESS), "speech": track.speech}


def silence_only(work: Path, rng) -> tuple[np.ndarray, dict]:
    return pink_noise(40 * SR, -62, rng), {"reference": "", "speech": []}


def noise_only(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Broadband noise whose loudness drifts slowly (wind, traffic, fans): not silence, not speech."""
    n = 40 * SR
    drift = 10 ** (np.interp(np.arange(n), np.linspace(0, n, 9), rng.uniform(-6, 6, 9)) / 20)
    return (pink_noise(n, -28, rng) * drift).astype(np.float32), {"reference": "", "speech": []}


def vietnamese(work: Path, rng) -> tuple[np.ndarray, dict]:
    track = Track()
    track.pause(0.5)
    for sentence in texts.VIETNAMESE:
        track.say(synth(sentence, "vi", 130, work))
        track.pause(float(rng.uniform(0.6, 1.0)))
    return track.audio(-62, rng), {"reference": " ".join(texts.VIETNAMESE), "speech": track.speech}


def at_level(samples: np.ndarray, rms_db: float) -> np.ndarray:
    """`samples` scaled so that their RMS is `rms_db` dBFS."""
    return (samples / max(float(np.sqrt(np.mean(samples**2))), 1e-9) * 10 ** (rms_db / 20)).astype(np.float32)


@functools.cache
def trimmed_clips() -> list[tuple[np.ndarray, str]]:
    """The clips of bench.speech with their texts, leading and trailing quiet (40 dB under the peak) cut off."""
    items = []
    for row, samples in zip(speech.entries(), speech.clips()):
        loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (-40 / 20))
        items.append((samples[loud[0] : loud[-1] + 1], row["reference"]))
    return items


class Voices:
    """The real clips of bench.speech, edges trimmed, handed out in a shuffled order again and again."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.items, self.rng, self.order = trimmed_clips(), rng, []

    def next(self, max_s: float | None = None) -> tuple[np.ndarray, str]:
        while True:
            if not self.order:
                self.order = list(self.rng.permutation(len(self.items)))
            samples, text = self.items[self.order.pop()]
            if max_s is None or len(samples) <= max_s * SR:
                return samples, text


def real_track(rng, seconds: float, level_db, *, pause=(0.4, 1.0), max_clip_s=None, lead_s=0.5) -> tuple[Track, list[str]]:
    """Real clips one after another for about `seconds`, each at `level_db(start_s)` dBFS RMS."""
    voices, track, words = Voices(rng), Track(), []
    track.pause(lead_s)
    while track.length < seconds * SR:
        samples, text = voices.next(max_clip_s)
        track.say(at_level(samples, level_db(track.length / SR)))
        words.append(text)
        track.pause(float(rng.uniform(*pause)))
    return track, words


def recorded(track: Track, words: list[str], room_tone_db: float, rng) -> tuple[np.ndarray, dict]:
    """A real-speech track's audio over room tone, with its reference: the texts of its utterances."""
    return track.audio(room_tone_db, rng), {"reference": " ".join(words), "utterances": words, "speech": track.speech}


def level_step(drop_db: float):
    def make(work: Path, rng) -> tuple[np.ndarray, dict]:
        track, words = real_track(rng, 120, lambda t: -20.0 if t < 60 else -20.0 - drop_db)
        return recorded(track, words, -68, rng)
    return make


def quiet_and_loud(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Two talkers taking turns, one close to the microphone (-18 dBFS), one far from it (-38 dBFS)."""
    turns = iter(range(10**6))
    track, words = real_track(rng, 120, lambda t: -18.0 if next(turns) % 2 == 0 else -38.0)
    return recorded(track, words, -68, rng)


def fade(work: Path, rng) -> tuple[np.ndarray, dict]:
    """A talker fading from -18 to -48 dBFS over two minutes (walking away, a failing gain)."""
    track, words = real_track(rng, 120, lambda t: -18.0 - 30.0 * min(t, 120.0) / 120.0)
    return recorded(track, words, -70, rng)


def noise_floor(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Speech at -25 dBFS over a steady noise floor at -45 dBFS (fan, air conditioning)."""
    track, words = real_track(rng, 90, lambda t: -25.0)
    return recorded(track, words, -45, rng)


def telephone(work: Path, rng) -> tuple[np.ndarray, dict]:
    """A call: 300-3400 Hz, 8 kHz, mu-law, line noise; decoded back to 16 kHz as any input is."""
    track, words = real_track(rng, 90, lambda t: -22.0)
    wide, narrow = work / "wide.wav", work / "phone.wav"
    write_wav(wide, track.audio(-60, rng))
    speech.ffmpeg("-i", str(wide), "-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw", str(narrow))
    back = np.frombuffer(speech.ffmpeg("-i", str(narrow), "-f", "s16le", "-ac", "1", "-ar", str(SR), "-"), dtype=np.int16)
    return back.astype(np.float32) / 32768.0, {"reference": " ".join(words), "utterances": words, "speech": track.speech}


def short_utterances(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Short real utterances (at most 5 s) between 6-25 s pauses of room tone."""
    track, words = real_track(rng, 150, lambda t: -24.0, pause=(6.0, 25.0), max_clip_s=5.0, lead_s=4.0)
    return recorded(track, words, -62, rng)


def real_monologue(work: Path, rng) -> tuple[np.ndarray, dict]:
    """Ten minutes of real speech with short pauses."""
    track, words = real_track(rng, 600, lambda t: -22.0, pause=(0.3, 1.0))
    return recorded(track, words, -65, rng)


GENERATED = {
    "monologue_en": ("en", "5-minute monologue, paragraph pauses", monologue),
    "long_silences_en": ("en", "utterances between 5-30 s of room tone", long_silences),
    "boundary_stress_en": ("en", "continuous speech across every cut point", boundary_stress),
    "silence_only": ("en", "40 s room tone, no speech", silence_only),
    "noise_only": ("en", "40 s drifting pink noise, no speech", noise_only),
    "vietnamese_vi": ("vi", "Vietnamese sentences", vietnamese),
    "real_level_step_20_en": ("en", "real speech, level steps down 20 dB halfway", level_step(20)),
    "real_level_step_30_en": ("en", "real speech, level steps down 30 dB halfway", level_step(30)),
    "real_quiet_and_loud_en": ("en", "real speech, talkers at -18 and -38 dBFS taking turns", quiet_and_loud),
    "real_fade_en": ("en", "real speech fading from -18 to -48 dBFS", fade),
    "real_noise_floor_en": ("en", "real speech at -25 dBFS over a -45 dBFS noise floor", noise_floor),
    "real_telephone_en": ("en", "real speech through a telephone line (300-3400 Hz, 8 kHz mu-law)", telephone),
    "real_short_utterances_en": ("en", "short real utterances between 6-25 s pauses", short_utterances),
    "real_monologue_en": ("en", "10 minutes of real speech", real_monologue),
}


def build(force: bool = False) -> Path:
    """Generate the corpus (once per generator version) and return the manifest path."""
    out = corpus_dir()
    manifest = out / "manifest.json"
    if manifest.is_file() and not force:
        return manifest
    _require_tools()
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory(prefix="stt-corpus-") as tmp:
        for seed, (name, (language, kind, make)) in enumerate(GENERATED.items()):
            samples, info = make(Path(tmp), np.random.default_rng(seed))
            path = out / f"{name}.wav"
            write_wav(path, samples)
            entries.append({"name": name, "path": str(path), "language": language, "kind": kind,
                            "duration_s": round(len(samples) / SR, 3), **info})
    if JFK_WAV.is_file():
        entries.append({"name": "jfk", "path": str(JFK_WAV), "language": "en", "kind": "real speech (whisper.cpp sample)",
                        "duration_s": 11.0, "reference": JFK_TEXT, "speech": [[0.3, 10.6]]})
    partial = manifest.with_suffix(".part")
    partial.write_text(json.dumps({"generator_version": GENERATOR_VERSION, "files": entries}, ensure_ascii=False, indent=1))
    partial.replace(manifest)
    return manifest


def real_speech(path: Path, seconds: float, seed: int, clips: list[np.ndarray]) -> Path:
    """A recording of exactly `seconds` of real speech: `clips` (bench.speech.clips()) in a shuffled order (again
    and again), 0.3-1.0 s pauses between them, faint room tone; written once (the seed fixes the content)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    track, need = Track(), int(seconds * SR)
    while track.length < need:
        for i in rng.permutation(len(clips)):
            track.say(clips[i])
            track.pause(float(rng.uniform(0.3, 1.0)))
            if track.length >= need:
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.wav")
    write_wav(partial, track.audio(-65, rng)[:need])
    partial.replace(path)
    return path


def real_speech_said(seconds: float, seed: int) -> tuple[np.ndarray, str]:
    """About `seconds` of real speech with the words said: whole clips of bench.speech (none longer than `seconds`
    unless none is that short) in a shuffled order, 0.3-1.0 s pauses, faint room tone."""
    rng = np.random.default_rng(seed)
    shortest = min(len(samples) for samples, _ in trimmed_clips()) / SR
    track, words = real_track(rng, seconds, lambda t: -22.0, pause=(0.3, 1.0), max_clip_s=max(seconds, shortest), lead_s=0.3)
    return track.audio(-65, rng), " ".join(words)


def vietnamese_said(seconds: float, seed: int, work: Path) -> tuple[np.ndarray, str]:
    """About `seconds` of Vietnamese with the words said: the sentences of bench.texts spoken by espeak-ng `vi`, in a
    shuffled order again and again, 0.6-1.0 s pauses, faint room tone."""
    rng = np.random.default_rng(seed)
    track, said, order = Track(), [], []
    track.pause(0.4)
    while track.length < seconds * SR:
        if not order:
            order = list(rng.permutation(len(texts.VIETNAMESE)))
        sentence = texts.VIETNAMESE[order.pop()]
        track.say(synth(sentence, "vi", 130, work))
        said.append(sentence)
        track.pause(float(rng.uniform(0.6, 1.0)))
    return track.audio(-62, rng), " ".join(said)


def load(manifest: Path | None = None) -> list[dict]:
    return json.loads((manifest or build()).read_text())["files"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate even if the cache has this version")
    args = parser.parse_args(argv)
    path = build(force=args.force)
    for entry in load(path):
        print(f"{entry['name']:22s} {entry['duration_s']:7.1f}s  {entry['kind']}")
    print(path)


if __name__ == "__main__":
    main()
