"""Every DAG imports cleanly, with no live services and no heavy imports at parse time."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_dags_import_without_errors_or_services(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    for name in ("AIRFLOW_CONN_STT_MONGO", "AIRFLOW_CONN_STT_S3"):
        monkeypatch.delenv(name, raising=False)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert "stt_transcribe" in bag.dag_ids


def test_transcribe_dag_shape():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["stt_transcribe"]
    assert [t.task_id for t in dag.topological_sort()] == ["prepare", "transcribe", "finish"]
    assert dag.params["language"] == "auto"
    assert dag.default_args["retry_exponential_backoff"]
    assert dag.default_args["retries"] >= 1


def test_dag_parse_does_not_import_the_pipeline():
    """Parsing must stay cheap: pydub, pymongo, boto3 and the pipeline load only inside tasks."""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('stt.pipeline', 'pydub', 'pymongo', 'boto3', 'pandas') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "dags" / "stt_transcribe.py")], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout


def test_ingest_dags(monkeypatch):
    """stt_ingest always; stt_ingest_events only when an SQS queue is configured."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("STT_EVENTS_SQS_QUEUE", raising=False)
    assert {"stt_ingest"} <= set(DagBag(dag_folder=str(REPO / "dags")).dag_ids)
    assert "stt_ingest_events" not in DagBag(dag_folder=str(REPO / "dags")).dag_ids
    monkeypatch.setenv("STT_EVENTS_SQS_QUEUE", "http://127.0.0.1:9/000000000000/stt-uploads")
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert [t.task_id for t in bag.dags["stt_ingest_events"].topological_sort()] == ["claim_notified_objects", "start_transcriptions"]
