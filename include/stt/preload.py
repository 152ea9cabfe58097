"""Task modules imported once where task processes are forked (the LocalExecutor scheduler, Celery workers),
so each task inherits them instead of importing them again.
"""

from __future__ import annotations

from stt.airflow_settings import airflow_command
from stt.config import Settings
from stt.log import logger


def runs_task_processes(argv: list[str], executor: str) -> bool:
    """Whether this Airflow process forks task processes itself: `airflow scheduler` with a LocalExecutor
    (`airflow standalone` runs one); with Celery the tasks run on the workers."""
    return airflow_command(argv) == "scheduler" and "LocalExecutor" in executor


def preload_task_modules() -> float:
    """Import once what every task of ours imports, in a process that forks task processes, so each task inherits
    it instead of importing it again: the pipeline and what its steps import (numpy with numpy.ma, pydub), the Mongo hook,
    Airflow's object-storage filesystems (botocore and aiobotocore, even for file://), the task decorators and
    Python operator the DAG file is parsed with, and the providers' asset URI handlers the task runtime looks up.
    Returns the CPU-seconds it took."""
    import time

    started = time.process_time()
    import airflow.dag_processing.bundles.local  # noqa: F401
    import airflow.sdk.definitions.asset.metadata  # noqa: F401
    import airflow.sdk.execution_time.cache  # noqa: F401
    import airflow.sdk.lineage  # noqa: F401
    import jinja2.ext  # noqa: F401
    import numpy  # noqa: F401
    import numpy.ma  # noqa: F401  (numpy imports it lazily on the chunk step's first percentile)
    import pydub  # noqa: F401
    from airflow.providers.mongo.hooks.mongo import MongoHook  # noqa: F401
    from airflow.providers.standard.decorators.python import python_task  # noqa: F401
    from airflow.sdk import ObjectStoragePath, dag, get_current_context, task  # noqa: F401
    from airflow.sdk.execution_time import timeout  # noqa: F401
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    import stt.jobs  # noqa: F401
    import stt.pipeline  # noqa: F401

    ObjectStoragePath("file:///").fs  # registers every provider's filesystem (cached for the process)
    ProvidersManagerTaskRuntime().initialize_providers_asset_uri_resources()  # cached for the process
    return time.process_time() - started


def preload_before_forking(where: str) -> None:
    """`preload_task_modules` in a process about to fork the processes that run tasks (airflow.preload_task_modules)."""
    if not Settings.from_env().airflow.preload_task_modules:
        return
    try:
        seconds = preload_task_modules()
    except Exception:  # a failed preload only costs speed: each task imports what it needs itself
        logger.exception("could not preload the task modules in the {}; each task will import them", where)
        return
    logger.info("preloaded the task modules in the {} ({:.2f} CPU-s) for the task processes it forks", where, seconds)
