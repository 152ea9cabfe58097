"""stt_ingest: on a schedule, list the inbox(es), claim new objects once in MongoDB, start one stt_transcribe run each.

Inboxes: STT_INBOX_URIS (comma-separated s3:// or file:// prefixes; default <STT_LOCAL_ROOT>/inbox/).
Schedule: STT_INGEST_SCHEDULE (cron, default every 2 minutes; `none` for trigger-only). At most STT_INGEST_MAX_PER_RUN per run.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from stt.callbacks import default_args
from stt.triggers import start_transcriptions
from stt.config import Settings

SCHEDULE = Settings.from_env().ingest.cron()


@dag(
    dag_id="stt_ingest",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=default_args(job_callbacks=False),
    tags=["stt"],
    doc_md=__doc__,
)
def stt_ingest():
    @task
    def claim_new_objects() -> list[dict]:
        from airflow.sdk import get_current_context

        from stt.ingest import scan_and_claim
        from stt.jobs import JobStore

        settings = Settings.from_env()
        run_id = get_current_context()["dag_run"].run_id
        return scan_and_claim(settings=settings, store=JobStore.from_airflow(settings), claimed_by=f"stt_ingest/{run_id}")

    start_transcriptions(claim_new_objects())


stt_ingest()
