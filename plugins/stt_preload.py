"""Airflow plugin: preload the pipeline's task modules in the scheduler before LocalExecutor forks its workers.

Task processes are forked from those workers, so each task then starts with the Mongo hook, the pipeline and
Airflow's object-storage filesystems already imported instead of importing them itself. Only `airflow scheduler`
preloads (the API server, DAG processor and triggerer run no tasks); STT_PRELOAD_TASK_MODULES=0 turns it off.
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

        from stt.airflow_glue import preload_task_modules, runs_task_processes
        from stt.config import Settings
        from stt.log import logger

        if not isinstance(component, Job) or not Settings.from_env().preload_task_modules:
            return
        if not runs_task_processes(sys.argv, conf.get("core", "executor", fallback="")):
            return
        try:
            seconds = preload_task_modules()
        except Exception:  # a failed preload only costs speed: tasks import what they need themselves
            logger.exception("could not preload the task modules in the scheduler; each task will import them")
            return
        logger.info("preloaded the task modules in the scheduler ({:.2f} CPU-s) for the task processes it forks", seconds)


class SttPreloadPlugin(AirflowPlugin):
    name = "stt_preload"
    listeners = [PreloadListener()]
