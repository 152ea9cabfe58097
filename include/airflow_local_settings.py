"""Airflow local settings (imported by every Airflow process): the project's cluster policies."""

from stt.policy import task_instance_mutation_hook

__all__ = ["task_instance_mutation_hook"]
