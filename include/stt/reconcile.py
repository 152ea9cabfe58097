"""The reconciler: settle jobs left PROCESSING although their Airflow run has ended or is gone.

A run's end normally reaches its job through the task callbacks and the run listener; when one of those
could not write (MongoDB down at that moment, a worker lost), the job would stay PROCESSING for ever.
"""

from __future__ import annotations

from collections.abc import Callable

from stt import pipeline, storage
from stt.config import Settings
from stt.jobs import JobStore
from stt.log import logger

ACTIVE_RUN_STATES = ("queued", "running")


def settle_stuck_jobs(store: JobStore, settings: Settings, run_state: Callable[[str, str], str | None], *,
                      idle_s: float, limit: int) -> dict[str, str]:
    """Settle up to `limit` PROCESSING jobs idle for `idle_s` whose run is not active; `run_state(dag_id, run_id)`
    is the run's state, None when the run does not exist. Returns job id → the status or error code it got."""
    settled = {}
    for doc in store.unfinished_runs(idle_s=idle_s, limit=limit):
        job_id, run_id = doc["_id"], doc["run_id"]
        state = run_state(doc.get("dag_id") or "stt_transcribe", run_id)
        if state in ACTIVE_RUN_STATES:
            continue
        outputs = doc.get("outputs") or {}
        if state == "success" and outputs and all(storage.exists(uri, settings) for uri in outputs.values()):
            store.settle_completed(job_id, run_id=run_id)
            settled[job_id] = "COMPLETED"
            continue
        if state is None:
            code, message = "RUN_GONE", f"its run {run_id} no longer exists"
        elif state == "failed":
            code = (doc.get("last_error") or {}).get("code") or "RUN_FAILED"
            message = f"run {run_id} failed; the failure had not reached the job"
        else:
            code, message = "RUN_ENDED_UNFINISHED", f"run {run_id} ended ({state}) without finishing the job"
        if store.fail(job_id, code=code, message=message, step="reconcile", run_id=run_id):
            settled[job_id] = code
            pipeline.cleanup(job_id, doc.get("source"), settings)
    logger.info("reconciler: {} job(s) settled {}", len(settled), settled or "")
    return settled


def airflow_run_state(dag_id: str, run_id: str) -> str | None:
    """A run's state through the task's Execution API (inside an Airflow task only); None when it does not exist."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    if not RuntimeTaskInstance.get_dr_count(dag_id=dag_id, run_ids=[run_id]):
        return None
    state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    return getattr(state, "value", state)
