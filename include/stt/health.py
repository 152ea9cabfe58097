"""Health checks of everything a transcription needs, each with a clear message when it fails."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass

from stt.config import Settings
from stt.log import mask_secrets

GGML_MAGIC = 0x67676D6C


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_mongo(collection) -> Check:
    try:
        collection.database.client.admin.command("ping")
        return Check("mongodb", True, f"ping ok ({collection.database.name}.{collection.name})")
    except Exception as exc:  # any failure is the answer of this check
        return Check("mongodb", False, mask_secrets(f"cannot reach MongoDB: {str(exc).split(', Timeout')[0]}"))


def check_storage(uri: str, settings: Settings) -> Check:
    from stt.storage import object_path

    try:
        path = object_path(uri, settings)
        path.fs.invalidate_cache()
        exists = path.exists()
        return Check("storage", exists, f"{uri} reachable" if exists else f"{uri} does not exist (create the bucket or folder)")
    except Exception as exc:
        return Check("storage", False, mask_secrets(f"cannot reach {uri}: {exc}"))


def check_whisper(settings: Settings) -> Check:
    cli = settings.whisper.cli
    if not cli.exists():
        return Check("whisper-cli", False, f"{cli} missing: run `bash whisper/provision.sh` or set WHISPER_CLI")
    try:
        proc = subprocess.run([str(cli), "--help"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("whisper-cli", False, f"{cli} does not run: {exc}")
    return Check("whisper-cli", proc.returncode == 0, f"{cli} runs" if proc.returncode == 0 else f"{cli} --help exited {proc.returncode}")


def check_model(settings: Settings, model: str) -> Check:
    path = settings.whisper.model_path(model)
    if not path.is_file():
        return Check(f"model {model}", False, f"{path} missing: run `bash whisper/provision.sh --models {model}`")
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4 or struct.unpack("<I", head)[0] != GGML_MAGIC:
        return Check(f"model {model}", False, f"{path} is not a ggml model (bad magic); re-run provision.sh")
    return Check(f"model {model}", True, f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


def run_checks(settings: Settings, *, collection=None, storage_uris: tuple[str, ...] = (), models: tuple[str, ...] = ()) -> list[Check]:
    checks = [check_whisper(settings)]
    checks += [check_model(settings, m) for m in (models or settings.whisper.installed_models() or (settings.whisper.default_model,))]
    if collection is not None:
        checks.append(check_mongo(collection))
    checks += [check_storage(uri, settings) for uri in storage_uris]
    return checks
