"""Fixtures for every test: a private Airflow home (SQLite), real local servers on free ports, the speech samples."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ (the speech samples) also under a bare `pytest`

from bench.speech import JFK_MP3, JFK_TEXT, JFK_WAV  # noqa: E402,F401  (re-exported to the tests)
from stt.text import normalise  # noqa: E402,F401  (re-exported to the tests)

# Airflow reads its configuration at import: point it at a private home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="stt-test-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "STT_SCRATCH_DIR": str(_AIRFLOW_HOME / "scratch"),
    "STT_RETRY_DELAY_S": "1",
    "STT_MAX_RETRY_DELAY_S": "4",
})

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata database for dag.test()."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    from stt.localstack import MongoServer, mongo_conn_uri

    server = MongoServer(tmp_path_factory.mktemp("mongo")).start()
    os.environ["AIRFLOW_CONN_STT_MONGO"] = mongo_conn_uri(server.port)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    from stt.localstack import S3Server, s3_conn_uri

    server = S3Server().start()
    os.environ["AIRFLOW_CONN_STT_S3"] = s3_conn_uri(server.endpoint_url)
    yield server
    server.stop()


@pytest.fixture
def jobs(mongo_server):
    """The jobs collection, read over the wire with a plain pymongo client."""
    import pymongo

    client = pymongo.MongoClient(mongo_server.url, serverSelectionTimeoutMS=5000)
    yield client["stt"]["jobs"]
    client.close()


@pytest.fixture(scope="session")
def whisper_ready():
    """whisper-cli and the models provisioned by whisper/provision.sh (a hard requirement, never skipped)."""
    from stt.config import Settings

    settings = Settings.from_env()
    missing = [str(p) for p in (settings.whisper.cli, settings.whisper.model_path("tiny.en"), settings.whisper.model_path("base")) if not p.exists()]
    assert not missing, f"run `bash whisper/provision.sh` first; missing: {missing}"
    return settings


@pytest.fixture(scope="session")
def transcribe_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["stt_transcribe"]


@pytest.fixture
def run_transcribe(transcribe_dag, mongo_server, whisper_ready):
    """Run stt_transcribe in-process with dag.test() and return the finished DagRun."""

    def run(**conf):
        # in-process, a run's conf stays in the params of the task objects that ran (a task process starts afresh)
        defaults = {task.task_id: copy.deepcopy(task.params) for task in transcribe_dag.tasks}
        try:
            return transcribe_dag.test(run_conf=conf)
        finally:
            for task in transcribe_dag.tasks:
                task.params = defaults[task.task_id]

    return run
