"""Quantized models (q8_0, q5_1 of every provisioned model) as provisioned by whisper/provision.sh: the files
match their pinned checksums, a re-run only re-links, a quantizer that writes other bytes fails provisioning,
and the pipeline transcribes with them (real whisper.cpp, the pipeline's own chunk → transcribe → merge)."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import pytest

from bench import accuracy
from conftest import JFK_TEXT, JFK_WAV, REPO, normalise

PROVISION = REPO / "whisper" / "provision.sh"
MODELS_DIR = REPO / "whisper" / "models"
DEFAULT_QUANTIZED = ("tiny.en-q8_0", "tiny.en-q5_1", "base-q8_0", "base-q5_1")


def pinned(table: str) -> dict[str, str]:
    """A `declare -A TABLE=([key]=sha256 ...)` table of provision.sh."""
    body = re.search(rf"declare -A {table}=\((.*?)\n\)", PROVISION.read_text(), re.S).group(1)
    return dict(re.findall(r"\[([^\]]+)\]=([0-9a-f]{64})", body))


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def provision(*args: str, whisper_dir=PROVISION.parent, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(whisper_dir / "provision.sh"), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, "STT_OFFLINE": "1", **env})


def test_every_provisioned_model_has_its_q8_0_and_q5_1_with_the_pinned_checksums(whisper_ready):
    converted, quantized = pinned("CONVERTED_SHA256"), pinned("QUANTIZED_SHA256")
    assert set(quantized) == set(DEFAULT_QUANTIZED)
    for name in DEFAULT_QUANTIZED:
        model = name.rsplit("-", 1)[0]
        path = MODELS_DIR / f"ggml-{name}.bin"
        assert path.is_file(), f"{path} missing: provisioning writes the q8_0 and q5_1 of every model"
        assert path.stat().st_size < 0.6 * (MODELS_DIR / f"ggml-{model}.bin").stat().st_size
        source_is_converted = sha256(MODELS_DIR / f"ggml-{model}.bin") == converted[model]
        if source_is_converted and platform.machine() == "x86_64":
            assert sha256(path) == quantized[name], name
        else:  # the official files, or another architecture: the checksum recorded when it was written
            stamp = (path.resolve().parent / f".{path.name}.ok").read_text().split()[0]
            assert sha256(path) == stamp, name


def test_a_second_run_only_relinks(whisper_ready):
    started = time.monotonic()
    done = provision()
    seconds = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-2000:]
    for name in DEFAULT_QUANTIZED:
        model, kind = name.rsplit("-", 1)
        assert f"quantize {model} {kind}: cached" in done.stderr
        assert (MODELS_DIR / f"ggml-{name}.bin").resolve().is_file()
    assert "running whisper-quantize" not in done.stderr and "build: cached" in done.stderr
    assert seconds < 30, f"a provisioned machine took {seconds:.1f}s"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the quantized checksums are pinned for x86-64")
def test_a_quantizer_writing_other_bytes_fails_provisioning(whisper_ready, tmp_path):
    """A copy of whisper/ with a cache of links to the provisioned files (its stamps stay valid), and a
    whisper-quantize that writes something else: provisioning stops, names both checksums, keeps no file."""
    whisper_dir = tmp_path / "whisper"
    whisper_dir.mkdir()
    shutil.copy(PROVISION, whisper_dir)
    cache = tmp_path / "cache"
    for kept in ("models/ggml-tiny.en.bin", "models/ggml-silero-v6.2.0.bin", "samples/jfk.wav"):
        real = (REPO / "whisper" / kept).resolve()
        (cache / kept).parent.mkdir(parents=True, exist_ok=True)
        (cache / kept).symlink_to(real)
        (cache / kept).with_name(f".{real.name}.ok").symlink_to(real.with_name(f".{real.name}.ok"))
    quantizer = tmp_path / "whisper-quantize"
    quantizer.write_text('#!/bin/sh\nprintf "not the pinned bytes" > "$2"\n')
    quantizer.chmod(0o755)

    done = provision("--models", "tiny.en", whisper_dir=whisper_dir, STT_CACHE_DIR=str(cache),
                     WHISPER_CLI=str(whisper_ready.whisper.cli), WHISPER_QUANTIZE=str(quantizer))

    assert done.returncode != 0
    expected = pinned("QUANTIZED_SHA256")["tiny.en-q8_0"]
    assert f"ggml-tiny.en-q8_0.bin written by {quantizer} has sha256" in done.stderr and f"pinned {expected}" in done.stderr
    assert "--no-quantize" in done.stderr
    assert not (cache / "models" / "ggml-tiny.en-q8_0.bin").exists()


def test_base_q8_0_transcribes_jfk_with_dtw_word_times(whisper_ready, tmp_path):
    from stt.whisper import decode_args

    assert decode_args("base-q8_0", whisper_ready.whisper.word_timing) == ("-nfa", "-dtw", "base")

    transcript, _ = accuracy.run_pipeline(JFK_WAV, language="en", model="base-q8_0", method="silence", root=tmp_path)

    assert normalise(transcript["text"]) == normalise(JFK_TEXT)
    words = [w for s in transcript["segments"] for w in s["words"]]
    assert [normalise(w["text"]) for w in words] == normalise(JFK_TEXT).split()
    assert all(0.0 <= w["start"] <= w["end"] <= 11.1 for w in words)
    assert [w["end"] for w in words] == sorted(w["end"] for w in words)
    ends = {normalise(w["text"]): w["end"] for w in words}  # the last of repeated words
    assert 2.0 < ends["americans"] < 2.8 and 10.0 < ends["country"] < 10.9, ends  # where JFK says them


@pytest.mark.parametrize("model", ["tiny.en", "tiny.en-q8_0"])
def test_english_only_models_quantized_or_not_refuse_vietnamese(model, whisper_ready, jobs, tmp_path):
    from stt import pipeline
    from stt.dag_params import transcribe_params
    from stt.errors import InvalidParameter
    from stt.jobs import JobStore

    assert model in transcribe_params(whisper_ready)["model"].schema["examples"]  # offered by the trigger form
    shutil.copy(JFK_WAV, tmp_path / "jfk.wav")

    with pytest.raises(InvalidParameter, match=f"model '{model}' is English-only") as caught:
        pipeline.validate({"source": f"file://{tmp_path}/jfk.wav", "language": "vi", "model": model}, job_id=f"quantized-vi-{model}",
                          dag_id="test", run_id="r1", settings=whisper_ready, store=JobStore(jobs))
    assert caught.value.code == "MODEL_LANGUAGE_MISMATCH"
