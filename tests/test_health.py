"""Health checks against the real components, and what they say when something is missing."""

from __future__ import annotations


from stt.config import Settings
from stt.health import run_checks


def test_everything_healthy(whisper_ready, jobs, tmp_path):
    checks = run_checks(whisper_ready, collection=jobs, storage_uris=(f"file://{tmp_path}",), models=("tiny.en", "base"))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert [c.name for c in checks] == ["whisper-cli", "model tiny.en", "model base", "mongodb", "storage"]


def test_each_failure_says_what_to_do(tmp_path):
    (tmp_path / "ggml-fake.bin").write_bytes(b"not a model")
    broken = Settings().updated(whisper={"cli": tmp_path / "nope", "models_dir": tmp_path})
    import pymongo

    dead = pymongo.MongoClient("mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200)["stt"]["jobs"]
    checks = {c.name: c for c in run_checks(broken, collection=dead, storage_uris=(f"file://{tmp_path}/missing",), models=("fake", "base"))}
    assert not any(c.ok for c in checks.values())
    assert "provision.sh" in checks["whisper-cli"].detail
    assert "bad magic" in checks["model fake"].detail
    assert "--models base" in checks["model base"].detail
    assert "cannot reach MongoDB" in checks["mongodb"].detail
    assert "does not exist" in checks["storage"].detail
