"""Airflow plugin: mirror run outcomes that happen outside our task code onto the job document.

Task failures and retries are recorded by the task callbacks (include/stt/callbacks.py). This
listener covers what no task callback sees: a run failed because a task was killed or timed out
without its callback, upstream failures, a run marked failed by hand in the UI or REST API. It runs
in the scheduler and API server.
"""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

MIRRORED_DAGS = ("stt_transcribe",)


class JobMirrorListener:
    @hookimpl
    def on_dag_run_failed(self, dag_run, msg: str):
        if dag_run.dag_id not in MIRRORED_DAGS:
            return
        from stt.callbacks import record_run_failure

        record_run_failure(dag_run, msg)


class SttJobMirrorPlugin(AirflowPlugin):
    name = "stt_job_mirror"
    listeners = [JobMirrorListener()]
