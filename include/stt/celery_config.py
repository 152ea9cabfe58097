"""`[celery] celery_config_options` (airflow.cfg): Airflow's own Celery settings, plus our task modules preloaded
in each Celery worker before it forks its pool (as plugins/stt_preload.py does in a LocalExecutor scheduler).
Imported only where Airflow builds its Celery app (scheduler and workers of a CeleryExecutor deployment)."""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

CELERY_CONFIG = dict(DEFAULT_CELERY_CONFIG)


@worker_init.connect
def preload_in_worker(**_) -> None:
    from stt.preload import preload_before_forking

    preload_before_forking("Celery worker")
