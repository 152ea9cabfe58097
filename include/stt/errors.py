"""Error taxonomy: permanent errors fail the job at once, transient ones are retried by Airflow."""

from __future__ import annotations


class SttError(Exception):
    """Base of the pipeline's own errors; `code` is the machine-readable reason stored on the job."""

    code = "STT_ERROR"
    permanent = False

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class PermanentError(SttError):
    """Retrying cannot help (bad input, bad parameters, missing model)."""

    code = "PERMANENT_ERROR"
    permanent = True


class TransientError(SttError):
    """Retrying may help (process crash, timeout, storage or database unreachable)."""

    code = "TRANSIENT_ERROR"


class InvalidSource(PermanentError):
    code = "INVALID_SOURCE"


class SourceNotFound(PermanentError):
    code = "SOURCE_NOT_FOUND"


class InvalidAudio(PermanentError):
    code = "INVALID_AUDIO"


class InvalidParameter(PermanentError):
    code = "INVALID_PARAMETER"


class ModelNotFound(PermanentError):
    code = "MODEL_NOT_FOUND"


class WhisperFailed(TransientError):
    code = "WHISPER_FAILED"


class WhisperTimeout(TransientError):
    code = "WHISPER_TIMEOUT"


# Infrastructure errors from the libraries we call, by class name (no imports of boto3/pymongo needed here).
_UNAVAILABLE = {
    "EndpointConnectionError": "STORAGE_UNAVAILABLE",
    "ConnectTimeoutError": "STORAGE_UNAVAILABLE",
    "ReadTimeoutError": "STORAGE_UNAVAILABLE",
    "ClientConnectorError": "STORAGE_UNAVAILABLE",
    "ServerSelectionTimeoutError": "DATABASE_UNAVAILABLE",
    "AutoReconnect": "DATABASE_UNAVAILABLE",
    "NetworkTimeout": "DATABASE_UNAVAILABLE",
    "AirflowTaskTimeout": "TASK_TIMEOUT",
}


def error_code(exc: BaseException | None) -> str:
    """The reason code for any exception, following `__cause__` to our own error if wrapped."""
    seen = exc
    while seen is not None:
        if isinstance(seen, SttError):
            return seen.code
        seen = seen.__cause__
    if exc is None:
        return "UNKNOWN"
    for cls in type(exc).__mro__:
        if cls.__name__ in _UNAVAILABLE:
            return _UNAVAILABLE[cls.__name__]
    name = type(exc).__name__
    if "Timeout" in name:
        return "TASK_TIMEOUT"
    return f"UNEXPECTED_{name.upper()}"
