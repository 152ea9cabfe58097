"""A real multi-process Airflow deployment on this machine: CeleryExecutor, PostgreSQL metadata, Redis broker.

`CeleryStack` starts `airflow scheduler`, `dag-processor`, `api-server` and any number of
`airflow celery worker` processes (each in its own process group, logs under its root folder) on a
PostgreSQL database of its own and a Redis db number of its own, and removes all of it on `stop()`.
Used by test_celery.py and by bench/celery_throughput.py (which imports it, so keep it free of
imports from tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bench.speech import JFK_WAV
from stt.client import TERMINAL_RUN_STATES
from stt.localstack import free_port
from stt.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ADMIN_USER = "admin"


def padded_jfk():
    """jfk.wav with 0.75 s of silence on each side: repeated, it has a clear pause every period to cut at."""
    from pydub import AudioSegment

    jfk = AudioSegment.from_wav(JFK_WAV)
    pad = AudioSegment.silent(duration=750, frame_rate=jfk.frame_rate)
    return pad + jfk + pad


class ManagedProcess:
    """A child process in its own process group, its output in a log file; stop() ends the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL to it after `grace_s` (also kills what the process left behind)."""
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        self.popen.wait()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass  # every process of the group has ended


class CeleryStack:
    """Airflow 3 on the CeleryExecutor: scheduler, dag-processor, api-server and Celery workers as processes."""

    def __init__(self, root: Path, *, redis_db: int = 7, worker_env: dict | None = None, parallelism: int = 8,
                 code_root: Path = REPO):
        self.root = Path(root)
        self.code_root = Path(code_root)  # where dags/, include/, plugins/ and airflow.cfg are read from
        self.db_name = f"stt_celery_{secrets.token_hex(4)}"
        self.redis_db = redis_db
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.admin_password = secrets.token_urlsafe(12)
        self.worker_env = dict(worker_env or {})
        self.parallelism = parallelism
        self.processes: dict[str, ManagedProcess] = {}
        self._db_created = False

    # ----- environment -----

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    def env(self) -> dict:
        """The environment of every Airflow process: os.environ (connections, STT_*) plus the deployment's settings."""
        home = self.root / "airflow"
        env = os.environ.copy()
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(self.code_root / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.code_root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.code_root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Only the DAG under test runs (run_batch unpauses it); scheduled DAGs would take worker slots.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "stt.airflow_settings.POSTGRES_CONNECT_ARGS",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__API__SECRET_KEY": self._secret("api"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.root / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "PYTHONUNBUFFERED": "1",
        })
        if self.code_root != REPO:  # a copy of the code: its include/ goes before the editable install's
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.code_root / "include"), env.get("PYTHONPATH")]))
            env.setdefault("WHISPER_CLI", str(REPO / "whisper" / "bin" / "whisper-cli"))
            env.setdefault("STT_MODELS_DIR", str(REPO / "whisper" / "models"))
        return env

    def _secret(self, name: str) -> str:
        path = self.root / f".{name}-secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text()

    # ----- PostgreSQL and Redis -----

    def _admin_sql(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self) -> None:
        self._admin_sql(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True

    def drop_database(self) -> None:
        if self._db_created:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._db_created = False

    def flush_redis(self) -> None:
        import redis

        with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db) as client:
            client.flushdb()

    # ----- processes -----

    def airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def spawn(self, name: str, argv: list[str], extra_env: dict | None = None) -> ManagedProcess:
        env = self.env()
        env.update(extra_env or {})
        process = ManagedProcess(name, argv, env, self.root / "logs" / f"{name}.log")
        self.processes[name] = process
        return process

    def start(self, worker_ids: list[str] = (), timeout_s: float = 180.0) -> "CeleryStack":
        """Create the database, migrate it, start the core processes and the named workers; wait until all are up."""
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / "airflow").mkdir(parents=True, exist_ok=True)
        (self.root / "passwords.json").write_text(json.dumps({ADMIN_USER: self.admin_password}))
        self.flush_redis()
        self.create_database()
        migrate = subprocess.run(self.airflow("db", "migrate"), env=self.env(), cwd=REPO,
                                 capture_output=True, text=True, timeout=300)
        (self.root / "logs" / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stderr[-3000:]}"
        self.spawn("api-server", self.airflow("api-server", "--host", "127.0.0.1", "--port", str(self.api_port)))
        self.spawn("scheduler", self.airflow("scheduler"))
        self.spawn("dag-processor", self.airflow("dag-processor"))
        for worker_id in worker_ids:
            self.start_worker(worker_id, wait=False)
        self.wait_healthy(timeout_s)
        for worker_id in worker_ids:
            self.wait_worker_ready(worker_id, timeout_s)
        return self

    def start_worker(self, worker_id: str, *, concurrency: int = 1, wait: bool = True, timeout_s: float = 120.0) -> ManagedProcess:
        """One `airflow celery worker` named `worker_id` (Celery hostname and STT_WORKER_ID), its own scratch folder."""
        scratch = self.root / "scratch" / worker_id
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(self.worker_env)
        env.update({"STT_WORKER_ID": worker_id, "STT_SCRATCH_DIR": str(scratch)})
        process = self.spawn(f"worker-{worker_id}", self.airflow(
            "celery", "worker", "--celery-hostname", f"{worker_id}@%h", "--concurrency", str(concurrency),
            "--skip-serve-logs", "--without-mingle", "--without-gossip"), env)
        if wait:
            self.wait_worker_ready(worker_id, timeout_s)
        return process

    def stop_worker(self, worker_id: str) -> None:
        process = self.processes.pop(f"worker-{worker_id}", None)
        if process:
            process.stop()

    def check_alive(self) -> None:
        dead = [p for p in self.processes.values() if not p.running()]
        if dead:
            raise RuntimeError("; ".join(f"{p.name} exited with {p.popen.returncode}, log tail:\n{p.log_text()[-2500:]}" for p in dead))

    def wait_healthy(self, timeout_s: float) -> None:
        """Wait for the API server to answer and report a healthy scheduler and dag-processor."""
        seen: dict = {}

        def healthy() -> bool:
            self.check_alive()
            seen["health"] = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=3).json()
            return all(seen["health"].get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "dag_processor"))

        wait_until(healthy, timeout_s=timeout_s, interval_s=1, what=lambda: f"a healthy stack (last health: {seen.get('health')})",
                   ignore=(httpx.HTTPError, ValueError))

    def wait_worker_ready(self, worker_id: str, timeout_s: float) -> None:
        """Celery logs `<hostname> ready.` once the worker consumes from the broker."""
        process = self.processes[f"worker-{worker_id}"]

        def ready() -> bool:
            if re.search(rf"{re.escape(worker_id)}@\S+ ready\.", process.log_text()):
                return True
            self.check_alive()
            return False

        wait_until(ready, timeout_s=timeout_s, interval_s=0.5, what=lambda: f"worker {worker_id} to be ready; log tail:\n{process.log_text()[-2500:]}")

    def client(self):
        from stt.client import AirflowClient

        return AirflowClient(self.api_url, ADMIN_USER, self.admin_password)

    def run_batch(self, confs: list[dict], timeout_s: float = 600.0) -> dict[str, dict]:
        """Trigger one stt_transcribe run per conf through the REST API; wait until all have ended. Returns runs by job id."""
        client = self.client()
        try:
            client.wait_for_dag("stt_transcribe", timeout_s=120)
            client.unpause("stt_transcribe")
            run_ids = {conf["job_id"]: client.trigger("stt_transcribe", conf)["dag_run_id"] for conf in confs}
            finished: dict[str, dict] = {}

            def all_ended() -> bool:
                self.check_alive()
                for job_id, run_id in run_ids.items():
                    if job_id not in finished:
                        run = client.run("stt_transcribe", run_id)
                        if run["state"] in TERMINAL_RUN_STATES:
                            finished[job_id] = run
                return len(finished) == len(run_ids)

            wait_until(all_ended, timeout_s=timeout_s, interval_s=1, what=lambda: f"the runs of {sorted(set(run_ids) - set(finished))} to end")
            return finished
        finally:
            client.close()

    def stop(self) -> None:
        """Stop every process (workers first), then flush the Redis db and drop the database."""
        for name in sorted(self.processes, key=lambda n: (not n.startswith("worker-"), n)):
            self.processes[name].stop()
        self.processes.clear()
        self.flush_redis()
        self.drop_database()
