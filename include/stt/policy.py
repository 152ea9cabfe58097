"""Airflow cluster policy, exported by include/airflow_local_settings.py (Airflow's documented place for policies).

A run's `priority` (high/normal/low, from the trigger conf) becomes the priority_weight of its task
instances, so busy workers take high-priority jobs first.
"""

from __future__ import annotations

from stt.airflow_glue import PRIORITY_WEIGHTS

PRIORITISED_DAGS = ("stt_transcribe",)


def task_instance_mutation_hook(task_instance, dag_run) -> None:
    if dag_run is None or task_instance.dag_id not in PRIORITISED_DAGS:
        return
    priority = (dag_run.conf or {}).get("priority") or "normal"
    task_instance.priority_weight = PRIORITY_WEIGHTS.get(priority, PRIORITY_WEIGHTS["normal"])
