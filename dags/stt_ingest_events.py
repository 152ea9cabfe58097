"""stt_ingest_events: event-driven ingestion — S3 bucket notification → SQS → AssetWatcher → claim → stt_transcribe.

Defined only when STT_EVENTS_SQS_QUEUE (the queue URL) is set. Claims go through the same MongoDB claim
as the scheduled stt_ingest, so together they still give exactly one job per object.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher, dag, task

from stt.callbacks import default_args
from stt.triggers import start_transcriptions
from stt.config import Settings

SETTINGS = Settings.from_env()

if SETTINGS.events.sqs_queue:
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    uploads = Asset(
        "stt_s3_uploads",
        watchers=[AssetWatcher(
            name="stt_s3_uploads_sqs",
            trigger=SqsSensorTrigger(
                sqs_queue=SETTINGS.events.sqs_queue,
                aws_conn_id=SETTINGS.events_conn_id(),
                max_messages=10,
                waiter_delay=SETTINGS.events.poll_s,
            ),
        )],
    )

    @dag(dag_id="stt_ingest_events", schedule=[uploads], catchup=False, default_args=default_args(job_callbacks=False), tags=["stt"], doc_md=__doc__)
    def stt_ingest_events():
        @task
        def claim_notified_objects(**context) -> list[dict]:
            from stt.ingest import claim_from_asset_events
            from stt.jobs import JobStore

            settings = Settings.from_env()
            events = context["triggering_asset_events"][uploads]
            return claim_from_asset_events(events, settings=settings, store=JobStore.from_airflow(settings), claimed_by=f"stt_ingest_events/{context['dag_run'].run_id}")

        start_transcriptions(claim_notified_objects())

    stt_ingest_events()
