"""Airflow cluster policy, exported by include/airflow_local_settings.py (Airflow's documented place for policies).

A run's `priority` (high/normal/low, from the trigger conf) scales the priority_weight of its task
instances, so busy workers take high-priority jobs first. Within one priority, transcription goes first,
then the task that finishes a job, then the one that starts one: with many jobs queued, a freed whisper slot
is refilled at once instead of waiting behind the prepare task of every job triggered
(Airflow's default weight rule, `downstream`, does the opposite). Measured with `python -m bench.speed`:
20 one-minute jobs at once waited 21 s for their first transcription under the default. Within one priority
and step, runs go first come, first served (by `dag_run.id`): Airflow breaks ties by logical date, which
triggered runs do not have, so a bulk inbox's order (ingestion triggers the largest recordings first) would
otherwise be lost, and a long recording that happens to start last finishes alone while the other whisper
slots idle.
"""

from __future__ import annotations

from stt.dag_params import PRIORITY_WEIGHTS

PRIORITISED_DAGS = ("stt_transcribe",)
STEP_WEIGHTS = {"transcribe": 4, "finish": 3, "prepare": 1}
ARRIVALS = 1_000_000  # runs told apart first come, first served (their ids modulo this), under each step weight


def task_instance_mutation_hook(task_instance, dag_run) -> None:
    if dag_run is None or task_instance.dag_id not in PRIORITISED_DAGS:
        return
    priority = (dag_run.conf or {}).get("priority") or "normal"
    weight = PRIORITY_WEIGHTS.get(priority, PRIORITY_WEIGHTS["normal"])
    first_come = ARRIVALS - 1 - (getattr(dag_run, "id", None) or 0) % ARRIVALS
    task_instance.priority_weight = weight * STEP_WEIGHTS.get(task_instance.task_id, 1) * ARRIVALS + first_come
