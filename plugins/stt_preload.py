"""Airflow plugin: preload the pipeline's task modules in the scheduler before LocalExecutor forks its workers.

Task processes are forked from those workers, so each task then starts with the Mongo hook, the pipeline and
Airflow's object-storage filesystems already imported instead of importing them itself. Only `airflow scheduler`
with a LocalExecutor preloads (the API server, DAG processor and triggerer run no tasks; Celery workers preload
through stt.celery_config); STT_PRELOAD_TASK_MODULES=0 turns it off.
"""

from __future__ import annotations

import sys

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class PreloadListener:
    @hookimpl
    def on_starting(self, component):
        from airflow.configuration import conf
        from airflow.jobs.job import Job  # on_starting also fires in task processes (their component is no Job)

        from stt.preload import preload_before_forking, runs_task_processes

        if isinstance(component, Job) and runs_task_processes(sys.argv, conf.get("core", "executor", fallback="")):
            preload_before_forking("scheduler")


class SttPreloadPlugin(AirflowPlugin):
    name = "stt_preload"
    listeners = [PreloadListener()]
