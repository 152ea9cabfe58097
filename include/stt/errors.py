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


class FileTooLarge(InvalidAudio):
    code = "FILE_TOO_LARGE"


class InvalidParameter(PermanentError):
    code = "INVALID_PARAMETER"


class ModelNotFound(PermanentError):
    code = "MODEL_NOT_FOUND"


class InvalidJobId(PermanentError):
    """A job id is data, never a path: it must match `jobs.JOB_ID_PATTERN`."""

    code = "INVALID_JOB_ID"


class SourceOutsideRoot(InvalidSource):
    """A source that resolves outside every storage root it may come from."""

    code = "SOURCE_OUTSIDE_ROOT"


class SourceChanged(PermanentError):
    """The object's content changed after it was claimed: the new content is a job of its own."""

    code = "SOURCE_CHANGED"


class PathOutsideRoot(PermanentError):
    """A folder the pipeline would create or delete lies outside its root."""

    code = "PATH_OUTSIDE_ROOT"


class WorkFilesGone(PermanentError):
    """A step's inputs in the work folder are gone (removed when the job finished or failed for good)."""

    code = "WORK_FILES_GONE"


class WhisperCrashed(PermanentError):
    """whisper-cli crashed on the same chunk again: retrying would crash again."""

    code = "WHISPER_CRASHED"


class WhisperFailed(TransientError):
    code = "WHISPER_FAILED"


class WhisperCrash(WhisperFailed):
    """whisper-cli died of a signal such as SIGABRT or SIGSEGV while decoding input file `index` of its batch."""

    def __init__(self, message: str, *, index: int):
        super().__init__(message)
        self.index = index


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
