"""What the DAG files need from Airflow's side: params, default_args, job ids from the run, callbacks.

Kept light at import (DAG parsing imports it); the pipeline itself is imported inside the tasks.
"""

from __future__ import annotations

import hashlib
import os
import socket

from stt.airflow_settings import airflow_command
from stt.config import LANGUAGES, Settings
from stt.errors import error_code
from stt.formats import FORMATS
from stt.jobs import JOB_ID_PATTERN
from stt.log import logger

KNOWN_MODELS = ("tiny.en", "base")
PRIORITY_WEIGHTS = {"high": 100, "normal": 10, "low": 1}


def job_id_for(dag_id: str, run_id: str, conf: dict | None) -> str:
    """The job id: given by the submitter in conf, else derived from the run (stable across task retries).
    A given id that is not a valid one is never used: the job is recorded under the derived id, and the
    validate step fails it with INVALID_JOB_ID."""
    from stt.errors import InvalidJobId
    from stt.jobs import check_job_id

    given = (conf or {}).get("job_id")
    if given:
        try:
            return check_job_id(given)
        except InvalidJobId:
            pass
    return "job-" + hashlib.sha1(f"{dag_id}/{run_id}".encode()).hexdigest()[:16]


def job_id_from_context(context) -> str:
    dag_run = context["dag_run"]
    return job_id_for(dag_run.dag_id, dag_run.run_id, dag_run.conf)


def worker_id() -> str:
    """Which worker runs a task: `airflow.worker_id` when the deployment names its workers, else host:pid."""
    return Settings.from_env().airflow.worker_id or f"{socket.gethostname()}:{os.getpid()}"


def transcribe_params(settings: Settings) -> dict:
    """The trigger form of `stt_transcribe` (rendered by the Airflow UI, validated on REST triggers)."""
    from airflow.sdk import Param

    from stt.audio import METHODS as CHUNKING_METHODS

    models = sorted(set(settings.whisper.installed_models()) | set(KNOWN_MODELS))
    language = settings.whisper.default_language()  # en for an English-only default model, which cannot detect
    return {
        "source": Param(
            type="string",
            minLength=1,
            title="Source audio",
            description="Object URI of the recording: s3://bucket/key (MinIO/AWS, Airflow connection "
            f"'{settings.storage.s3_conn_id}') or file:///absolute/path.",
        ),
        "language": Param(language, type="string", enum=list(LANGUAGES), title="Language",
                          description="Spoken language; auto detects it once per recording (needs a multilingual model such as base)."),
        "model": Param(settings.whisper.default_model, type="string", examples=models, title="Model",
                       description="whisper.cpp model name; the file whisper/models/ggml-<name>.bin must exist on the workers. "
                       "English-only models (*.en) take language en only: with auto or vi the job fails with MODEL_LANGUAGE_MISMATCH."),
        "chunking": Param(settings.chunking.method, type="string", enum=list(CHUNKING_METHODS), title="Chunking",
                          description="silence: cut in pauses (fixed cuts with overlap where there are none); fixed: equal overlapping chunks; vad: pauses found by whisper.cpp's Silero VAD."),
        "formats": Param(list(FORMATS), type="array", items={"type": "string", "enum": list(FORMATS)}, uniqueItems=True, minItems=1,
                         title="Output formats", description="Transcript files to publish next to the source."),
        "priority": Param("normal", type="string", enum=list(PRIORITY_WEIGHTS), title="Priority",
                          description="high runs before normal before low when workers are busy (Airflow priority_weight)."),
        "job_id": Param(None, type=["null", "string"], pattern=JOB_ID_PATTERN, title="Job id",
                        description="Optional: the job id to record in MongoDB (generated from the run when empty): 1-128 letters, digits, '.', '_' or '-'."),
        "etag": Param(None, type=["null", "string"], title="Expected ETag",
                      description="Optional: the source's ETag (version) to transcribe; the job fails with SOURCE_CHANGED if the object has other content. Ingestion sets it."),
    }


def default_args(*, job_callbacks: bool = True) -> dict:
    """Retries with exponential backoff for transient failures; for job DAGs, callbacks that mirror failures and retries."""
    args = {"owner": "stt", **Settings.from_env().retries.task_args()}
    if job_callbacks:
        args.update(on_failure_callback=on_task_failure, on_retry_callback=on_task_retry)
    return args


def start_transcriptions(requests):
    """One stt_transcribe run per claimed object, from mapped trigger requests (a run id that exists is skipped)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from stt.ingest import TRANSCRIBE_DAG_ID

    return TriggerDagRunOperator.partial(
        task_id="start_transcriptions",
        trigger_dag_id=TRANSCRIBE_DAG_ID,
        logical_date=None,
        skip_when_already_exists=True,
        wait_for_completion=False,
        map_index_template="{{ task.trigger_run_id }}",
    ).expand_kwargs(requests)


def runs_task_processes(argv: list[str], executor: str) -> bool:
    """Whether this Airflow process forks task processes itself: `airflow scheduler` with a LocalExecutor
    (`airflow standalone` runs one); with Celery the tasks run on the workers."""
    return airflow_command(argv) == "scheduler" and "LocalExecutor" in executor


def preload_task_modules() -> float:
    """Import once what every task of ours imports, in a process that forks task processes, so each task inherits
    it instead of importing it again: the pipeline and what its steps import (numpy with numpy.ma, pydub), the Mongo hook,
    Airflow's object-storage filesystems (botocore and aiobotocore, even for file://), the task decorators and
    Python operator the DAG file is parsed with, and the providers' asset URI handlers the task runtime looks up.
    Returns the CPU-seconds it took."""
    import time

    started = time.process_time()
    import airflow.dag_processing.bundles.local  # noqa: F401
    import airflow.sdk.definitions.asset.metadata  # noqa: F401
    import airflow.sdk.execution_time.cache  # noqa: F401
    import airflow.sdk.lineage  # noqa: F401
    import jinja2.ext  # noqa: F401
    import numpy  # noqa: F401
    import numpy.ma  # noqa: F401  (numpy imports it lazily on the chunk step's first percentile)
    import pydub  # noqa: F401
    from airflow.providers.mongo.hooks.mongo import MongoHook  # noqa: F401
    from airflow.providers.standard.decorators.python import python_task  # noqa: F401
    from airflow.sdk import ObjectStoragePath, dag, get_current_context, task  # noqa: F401
    from airflow.sdk.execution_time import timeout  # noqa: F401
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    import stt.jobs  # noqa: F401
    import stt.pipeline  # noqa: F401

    ObjectStoragePath("file:///").fs  # registers every provider's filesystem (cached for the process)
    ProvidersManagerTaskRuntime().initialize_providers_asset_uri_resources()  # cached for the process
    return time.process_time() - started


def preload_before_forking(where: str) -> None:
    """`preload_task_modules` in a process about to fork the processes that run tasks (airflow.preload_task_modules)."""
    if not Settings.from_env().airflow.preload_task_modules:
        return
    try:
        seconds = preload_task_modules()
    except Exception:  # a failed preload only costs speed: each task imports what it needs itself
        logger.exception("could not preload the task modules in the {}; each task will import them", where)
        return
    logger.info("preloaded the task modules in the {} ({:.2f} CPU-s) for the task processes it forks", where, seconds)


def step_label(ti) -> str:
    """`transcribe[3]` for a mapped task instance, `validate` otherwise."""
    map_index = getattr(ti, "map_index", -1)
    return ti.task_id if map_index in (-1, None) else f"{ti.task_id}[{map_index}]"


def run_step(step, *args, **kwargs):
    """Run a pipeline step; a permanent error fails the task at once (no retries), anything else is retried."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from stt.errors import SttError
    from stt.jobs import JobStore

    settings = Settings.from_env()
    store = JobStore.from_airflow(settings)
    ti = get_current_context()["ti"]
    if ti.try_number > 1:
        store.record_attempt(job_id_from_context(get_current_context()), step=step_label(ti), try_number=ti.try_number)
    try:
        return step(*args, settings=settings, store=store, **kwargs)
    except SttError as exc:
        if exc.permanent:
            raise AirflowFailException(f"[{exc.code}] {exc}") from exc
        raise


def _describe(context) -> tuple[str, str, str]:
    exc = context.get("exception")
    cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
    message = str(cause) if cause is not None else "task failed (no exception recorded)"
    return error_code(exc), message, step_label(context["ti"])


def on_task_failure(context) -> None:
    """Record FAILED with the reason on the job; never raises (a broken mirror must not hide the failure)."""
    from stt.jobs import JobStore

    job_id = job_id_from_context(context)
    code, message, step = _describe(context)
    settings = Settings.from_env()
    try:
        JobStore.from_airflow(settings).fail(job_id, code=code, message=message, step=step, run_id=context["dag_run"].run_id)
    except Exception:
        logger.bind(job_id=job_id).exception("could not record the failure of {} on the job ([{}] {}); the reconciler will settle it", step, code, message)
    remove_work_files(job_id, context["dag_run"], settings)


def remove_work_files(job_id: str, dag_run, settings: Settings) -> None:
    """The job failed for good: remove its work folder and this machine's scratch; never raises."""
    from stt.pipeline import cleanup_failed

    try:
        cleanup_failed(job_id, (dag_run.conf or {}).get("source"), settings)
    except Exception:
        logger.bind(job_id=job_id).exception("could not remove the work files of run {}", dag_run.run_id)


def record_run_failure(dag_run, msg: str | None) -> None:
    """A whole run failed: make sure its job says FAILED (keeps a more specific error a task already recorded)."""
    from stt.jobs import JobStore

    job_id = job_id_for(dag_run.dag_id, dag_run.run_id, dag_run.conf)
    settings = Settings.from_env()
    try:
        store = JobStore.from_airflow(settings)
        store.fail_unless_finished(job_id, code="RUN_FAILED", message=msg or f"run {dag_run.run_id} failed", step="dag_run", run_id=dag_run.run_id)
        owned = (store.get(job_id) or {}).get("run_id") in (dag_run.run_id, None)
    except Exception:
        logger.bind(job_id=job_id).exception("could not record the failure of run {} on the job; the reconciler will settle it", dag_run.run_id)
        return
    if owned:  # a re-run that has taken the job over since keeps its work files
        remove_work_files(job_id, dag_run, settings)


def on_task_retry(context) -> None:
    """Count the retry and keep the last error on the job."""
    from stt.jobs import JobStore

    job_id = job_id_from_context(context)
    code, message, step = _describe(context)
    try_number = getattr(context["ti"], "try_number", 0)
    logger.bind(job_id=job_id).warning("{} try {} failed, Airflow will retry: [{}] {}", step, try_number, code, message)
    try:
        JobStore.from_airflow(Settings.from_env()).record_retry(job_id, step=step, try_number=try_number, code=code, message=message)
    except Exception:
        logger.bind(job_id=job_id).exception("could not record the retry of {} on the job", step)
