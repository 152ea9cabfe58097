"""Starting transcriptions from the ingest DAGs: one stt_transcribe run per claimed object."""

from __future__ import annotations


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
