"""Airflow cluster policy, exported by include/airflow_local_settings.py (Airflow's documented place for policies).

A run's `priority` (high/normal/low, from the trigger conf) scales the priority_weight of its task
instances, so busy workers take high-priority jobs first. Within one priority, transcription goes first,
then the task that finishes a job, then the one that starts one: with many jobs queued, a freed whisper slot
is refilled at once instead of waiting behind the prepare task of every job triggered
(Airflow's default weight rule, `downstream`, does the opposite). Measured with `python -m bench.speed`:
20 one-minute jobs at once waited 21 s for their first transcription under the default.
"""

from __future__ import annotations

from stt.dag_params import PRIORITY_WEIGHTS

PRIORITISED_DAGS = ("stt_transcribe",)
STEP_WEIGHTS = {"transcribe": 4, "finish": 3, "prepare": 1}


def task_instance_mutation_hook(task_instance, dag_run) -> None:
    if dag_run is None or task_instance.dag_id not in PRIORITISED_DAGS:
        return
    priority = (dag_run.conf or {}).get("priority") or "normal"
    weight = PRIORITY_WEIGHTS.get(priority, PRIORITY_WEIGHTS["normal"])
    task_instance.priority_weight = weight * STEP_WEIGHTS.get(task_instance.task_id, 1)
