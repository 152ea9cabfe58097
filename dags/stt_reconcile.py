"""stt_reconcile: settle jobs left PROCESSING whose stt_transcribe run has ended or is gone (FAILED with a reason).

Schedule: STT_RECONCILE_SCHEDULE (cron, default every 10 minutes; `none` for trigger-only). A job is looked at
once it has not changed for STT_RECONCILE_IDLE_S seconds (default 300).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from stt.callbacks import default_args
from stt.config import Settings

SCHEDULE = Settings.from_env().reconcile.cron()


@dag(dag_id="stt_reconcile", schedule=SCHEDULE, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args=default_args(job_callbacks=False), tags=["stt"], doc_md=__doc__)
def stt_reconcile():
    @task
    def settle_stuck_jobs() -> dict:
        from stt.jobs import JobStore
        from stt.reconcile import airflow_run_state, settle_stuck_jobs

        settings = Settings.from_env()
        return settle_stuck_jobs(JobStore.from_airflow(settings), settings, airflow_run_state,
                                 idle_s=settings.reconcile.idle_s, limit=500)

    settle_stuck_jobs()


stt_reconcile()
