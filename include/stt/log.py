"""Logging: loguru for our code, routed into stdlib logging so Airflow's task logs capture it.

Every record carries the job id, batch and chunk index when bound (`logger.bind(job_id=..., batch=..., chunk=...)`),
and credentials in URLs are masked before anything is written.
"""

from __future__ import annotations

import logging
import re
import sys

from loguru import logger

from stt.config import LogSettings

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_KEY_VALUE_SECRETS = re.compile(
    r"(?P<key>(?:password|passwd|secret|token|aws_secret_access_key)\"?\s*[:=]\s*\"?)(?P<value>[^\s\",}]+)",
    re.IGNORECASE,
)

_std = logging.getLogger("stt")


def mask_secrets(text: str) -> str:
    """Hide passwords in connection URLs and `password=...` style pairs."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KEY_VALUE_SECRETS.sub(lambda m: f"{m['key']}***", text)


def _context(extra: dict) -> str:
    parts = [f"{k}={extra[k]}" for k in ("job_id", "batch", "chunk") if extra.get(k) is not None]
    return f"[{' '.join(parts)}] " if parts else ""


def _to_stdlib(message) -> None:
    """Hand a loguru record to stdlib logging as a record of the caller's file, line and function."""
    record = message.record
    if record["level"].no < _std.getEffectiveLevel():
        return
    text = mask_secrets(_context(record["extra"]) + record["message"])
    exc = record["exception"]
    _std.handle(_std.makeRecord(_std.name, record["level"].no, record["file"].path, record["line"], text, (),
                                (exc.type, exc.value, exc.traceback) if exc is not None else None, func=record["function"]))


class _ConsoleWhenUnconfigured(logging.StreamHandler):
    """stderr for our records only while the root logger has no handler (CLI, scripts). Decided per record, not
    at import: modules imported before Airflow sets up its logging (the DAG file, the preload in the scheduler)
    must still reach Airflow's handlers, with their levels, once there are some; a copy of them on stderr
    would land in the task log a second time, as level "error" (task.stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def configure() -> None:
    """Route loguru into stdlib logging (idempotent): records propagate to the root logger (Airflow's, pytest's)
    and go to stderr only while nothing else handles them."""
    logger.remove()
    logger.add(_to_stdlib, level="DEBUG", format="{message}", backtrace=False, diagnose=False)
    _std.setLevel(logging.DEBUG)
    if not any(isinstance(h, _ConsoleWhenUnconfigured) for h in _std.handlers):
        handler = _ConsoleWhenUnconfigured(sys.stderr)
        handler.setLevel(LogSettings().level.upper())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _std.addHandler(handler)


configure()

__all__ = ["logger", "mask_secrets", "configure"]
