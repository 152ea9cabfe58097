"""Task and run callbacks: failures and retries mirrored onto the job, work files removed when a job fails for good.

None of them raises: a broken mirror must never hide the failure it reports (the reconciler settles what
they could not write).
"""

from __future__ import annotations

from stt.config import Settings
from stt.errors import error_code
from stt.log import logger
from stt.task_runtime import job_id_for, job_id_from_context, step_label


def default_args(*, job_callbacks: bool = True) -> dict:
    """Retries with exponential backoff for transient failures; for job DAGs, callbacks that mirror failures and retries."""
    args = {"owner": "stt", **Settings.from_env().retries.task_args()}
    if job_callbacks:
        args.update(on_failure_callback=on_task_failure, on_retry_callback=on_task_retry)
    return args


def _describe(context) -> tuple[str, str, str]:
    exc = context.get("exception")
    cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
    message = str(cause) if cause is not None else "task failed (no exception recorded)"
    return error_code(exc), message, step_label(context["ti"])


def failed_step(context, task_label: str) -> str:
    """The pipeline step a task failed in (pipeline.timed_step names it: a task may run several steps), else the task."""
    exc = context.get("exception")
    return next((e.failed_step for e in (exc, getattr(exc, "__cause__", None)) if getattr(e, "failed_step", None)), task_label)


def on_task_failure(context) -> None:
    """Record FAILED with the reason on the job; never raises (a broken mirror must not hide the failure)."""
    from stt.jobs import JobStore

    job_id = job_id_from_context(context)
    code, message, label = _describe(context)
    step = failed_step(context, label)
    settings = Settings.from_env()
    try:
        JobStore.from_airflow(settings).fail(job_id, code=code, message=message, step=step, run_id=context["dag_run"].run_id)
    except Exception:
        logger.bind(job_id=job_id).exception("could not record the failure of {} on the job ([{}] {}); the reconciler will settle it", step, code, message)
    remove_work_files(job_id, context["dag_run"], settings)


def remove_work_files(job_id: str, dag_run, settings: Settings) -> None:
    """The job failed for good: remove its work folder and this machine's scratch; never raises."""
    from stt.pipeline import cleanup

    try:
        cleanup(job_id, (dag_run.conf or {}).get("source"), settings)
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
