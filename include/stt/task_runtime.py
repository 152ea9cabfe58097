"""How a task of ours runs: the job id of its run, the worker it runs on, and a pipeline step run with the
job store, permanent errors failing the task at once.
"""

from __future__ import annotations

import hashlib
import os
import socket

from stt.config import Settings


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


def step_label(ti) -> str:
    """`transcribe[3]` for a mapped task instance, `prepare` otherwise."""
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
