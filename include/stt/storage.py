"""Object storage through Airflow's ObjectStoragePath: one code path for `s3://` (MinIO, AWS) and `file://`.

A source URI decides where everything else goes:
    root      s3://bucket                   | file://<the storage root the file resolves into>
    outputs   <root>/<output_prefix>/<relative name>.<fmt>   (a leading inbox/ is dropped; the source's own
              extension stays in the name, as whisper-cli names its outputs, so a.mp3 and a.wav never collide)
    work      <root>/<work_prefix>/<job id>/...              (chunks and chunk results between tasks)

Sources are confined: a `file://` source must resolve (symlinks followed, `..` collapsed) inside a storage
root (STT_LOCAL_ROOT, or a file:// prefix of STT_ALLOWED_SOURCES); with STT_ALLOWED_SOURCES set, every source
must lie under one of its prefixes. Folders the pipeline creates or deletes must lie inside their root.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from stt.config import Settings
from stt.errors import FileTooLarge, InvalidSource, PathOutsideRoot, SourceOutsideRoot
from stt.jobs import check_job_id
from stt.log import logger

SUPPORTED_SCHEMES = ("s3", "file")


@dataclass(frozen=True)
class SourceLocation:
    """Where a source lives and where its outputs and work files go."""

    uri: str
    scheme: str
    root: str
    relative: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.relative).name

    @property
    def extension(self) -> str:
        return PurePosixPath(self.relative).suffix.lower()

    def output_uri(self, settings: Settings, ext: str) -> str:
        rel = self.relative
        inbox = settings.storage.inbox_prefix + "/"
        if settings.storage.inbox_prefix and rel.startswith(inbox):
            rel = rel[len(inbox) :]
        return f"{self.root}/{settings.storage.output_prefix}/{rel}.{ext}"

    def work_uri(self, settings: Settings, job_id: str, *parts: str) -> str:
        """A URI inside the job's work folder (the job id is checked: it is data, never a path)."""
        return "/".join([self.root, settings.storage.work_prefix, check_job_id(job_id), *parts])

    def in_pipeline_area(self, settings: Settings) -> bool:
        """Whether the object is one of the pipeline's own (under the work or output prefix of its root)."""
        first = self.relative.split("/", 1)[0]
        return first in {settings.storage.work_prefix, settings.storage.output_prefix} - {""}


def _check_relative(rel: str, uri: str) -> str:
    if not rel or rel.endswith("/"):
        raise InvalidSource(f"source {uri!r} names a folder, not an object")
    parts = rel.split("/")
    if any(p in ("..", ".") for p in parts) or rel.startswith("/"):
        raise InvalidSource(f"source {uri!r} tries to leave its storage root ('..' or '.' in the key)")
    return rel


def inside(root: Path, path: Path) -> Path:
    """`path` resolved (symlinks followed, `..` collapsed); PathOutsideRoot unless it lies strictly inside `root`."""
    base, resolved = root.resolve(), path.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise PathOutsideRoot(f"{path} is not inside {base}: refused")
    return resolved


def local_roots(settings: Settings) -> list[Path]:
    """The folders `file://` sources may resolve into: STT_LOCAL_ROOT and the file:// prefixes of STT_ALLOWED_SOURCES."""
    roots = [settings.storage.local_root] if settings.storage.local_root else []
    roots += [Path(p.removeprefix("file://")).resolve() for p in settings.storage.allowed_sources if p.startswith("file:///")]
    return roots


def _check_allowed(uri: str, settings: Settings) -> None:
    if settings.storage.allowed_sources and not any(uri.startswith(p if p.endswith("/") else p + "/") for p in settings.storage.allowed_sources):
        raise SourceOutsideRoot(f"source {uri!r} is not under an allowed prefix (STT_ALLOWED_SOURCES)")


def locate(uri: str, settings: Settings) -> SourceLocation:
    """Parse and confine a source URI (`s3://bucket/key`, `file:///abs/path` or a plain absolute path)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidSource("source is empty: give s3://bucket/key or file:///path/to/audio")
    uri = uri.strip()
    if uri.startswith("/"):
        uri = "file://" + uri
    # Split by hand: object keys may hold '#', '?' or '%', which URL parsing would eat.
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SUPPORTED_SCHEMES:
        raise InvalidSource(f"source {uri!r}: unsupported scheme {scheme if sep else ''!r} (use s3:// or file://)")
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise InvalidSource(f"source {uri!r} has no bucket")
        key = _check_relative(key, uri)
        location = SourceLocation(uri=f"s3://{bucket}/{key}", scheme="s3", root=f"s3://{bucket}", relative=key)
        _check_allowed(location.uri, settings)
        return location
    host, slash, raw = rest.partition("/")
    raw = slash + raw
    if host not in ("", "localhost"):
        raise InvalidSource(f"source {uri!r}: file URIs must be absolute (file:///path)")
    if ".." in raw.split("/"):
        raise InvalidSource(f"source {uri!r} tries to leave its storage root ('..' in the path)")
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidSource(f"source {uri!r}: file URIs must be absolute (file:///path)")
    resolved = path.resolve()
    root = next((r for r in local_roots(settings) if resolved != r and resolved.is_relative_to(r)), None)
    if root is None:
        raise SourceOutsideRoot(f"source {uri!r} is outside the storage root (STT_LOCAL_ROOT or a file:// prefix of STT_ALLOWED_SOURCES)")
    rel = _check_relative(resolved.relative_to(root).as_posix(), uri)
    return SourceLocation(uri=f"file://{resolved}", scheme="file", root=f"file://{root}", relative=rel)


def object_path(uri: str, settings: Settings):
    """An ObjectStoragePath for a URI; S3 goes through the Airflow connection `settings.storage.s3_conn_id`."""
    from airflow.sdk import ObjectStoragePath

    if uri.startswith("s3://"):
        return ObjectStoragePath(uri, conn_id=settings.storage.s3_conn_id)
    return ObjectStoragePath(uri)


def exists(uri: str, settings: Settings) -> bool:
    return object_path(uri, settings).exists()


def download(uri: str, dest: Path, settings: Settings, *, max_bytes: int | None = None) -> Path:
    """Copy an object to a local file, atomically (a partial download never looks complete and never
    outlives the call); FileTooLarge as soon as more than `max_bytes` arrive."""
    started = time.monotonic()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    path = object_path(uri, settings)
    try:
        received = 0
        with path.open("rb") as src, open(partial, "wb") as out:
            while block := src.read(4 * 1024 * 1024):
                received += len(block)
                if max_bytes is not None and received > max_bytes:
                    raise FileTooLarge(f"source is over the limit of {max_bytes} bytes")
                out.write(block)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    logger.debug("downloaded {} ({} bytes) in {:.2f}s", uri, dest.stat().st_size, time.monotonic() - started)
    return dest


def upload(src: Path, uri: str, settings: Settings) -> str:
    """Copy a local file to an object URI."""
    started = time.monotonic()
    path = object_path(uri, settings)
    if uri.startswith("file://"):
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as data, path.open("wb") as out:
        while block := data.read(4 * 1024 * 1024):
            out.write(block)
    logger.debug("uploaded {} ({} bytes) in {:.2f}s", uri, src.stat().st_size, time.monotonic() - started)
    return uri


def write_text(uri: str, text: str, settings: Settings) -> str:
    path = object_path(uri, settings)
    if uri.startswith("file://"):
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(text)
    return uri


def read_text(uri: str, settings: Settings) -> str:
    with object_path(uri, settings).open("r", encoding="utf-8") as src:
        return src.read()


def delete_tree(uri: str, settings: Settings) -> None:
    """Remove a folder; missing is fine. A local folder must resolve inside a storage root."""
    if uri.startswith("file://"):
        local = Path(uri.removeprefix("file://"))
        if not any(_is_strictly_inside(local, root) for root in local_roots(settings)):
            raise PathOutsideRoot(f"{local} is not inside a storage root: not deleted")
    path = object_path(uri, settings)
    if path.exists():
        path.fs.rm(path.path, recursive=True)


def _is_strictly_inside(path: Path, root: Path) -> bool:
    try:
        inside(root, path)
    except PathOutsideRoot:
        return False
    return True


@dataclass(frozen=True)
class ObjectInfo:
    """An object's identity: a re-upload with new content has a new `etag` (S3 ETag, or size+mtime locally)."""

    uri: str
    etag: str
    size: int


def _info_to_object(scheme: str, name: str, info: dict) -> ObjectInfo:
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if not etag:
        mtime = info.get("mtime") or info.get("LastModified") or 0
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
        etag = f"{info.get('size', 0)}-{int(mtime * 1e6)}"
    uri = f"s3://{name}" if scheme == "s3" else f"file://{name}"
    return ObjectInfo(uri=uri, etag=etag, size=int(info.get("size") or 0))


def object_info(uri: str, settings: Settings) -> ObjectInfo:
    """Identity of one object; FileNotFoundError when it does not exist."""
    path = object_path(uri, settings)
    path.fs.invalidate_cache()
    return _info_to_object(urlparse(uri).scheme, path.path, path.fs.info(path.path))


def list_objects(prefix_uri: str, settings: Settings, *, min_age_s: float = 0.0) -> list[ObjectInfo]:
    """Every object under a prefix (recursively), oldest name first; hidden files, folders and local files
    modified in the last `min_age_s` seconds (possibly still being copied) are left for later."""
    path = object_path(prefix_uri.rstrip("/") + "/", settings)
    fs = path.fs
    fs.invalidate_cache()
    if not fs.exists(path.path):
        return []
    scheme = urlparse(prefix_uri).scheme
    now = time.time()
    found = []
    for name, info in sorted(fs.find(path.path, detail=True).items()):
        if info.get("type") != "file" or PurePosixPath(name).name.startswith("."):
            continue
        if scheme == "file" and now - float(info.get("mtime") or 0) < min_age_s:
            continue
        found.append(_info_to_object(scheme, name, info))
    return found
