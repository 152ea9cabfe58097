"""Embedded local servers on free loopback ports: a MongoDB wire-protocol server (nx-27017) and an S3 API (moto).

Used by the tests and by `scripts/run-local.sh`; production points the same Airflow connections at
MongoDB and MinIO instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from stt.waiting import poll_until, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mongo_conn_uri(port: int, db: str = "stt") -> str:
    return json.dumps({"conn_type": "mongo", "host": "127.0.0.1", "port": port, "schema": db,
                       "extra": {"serverSelectionTimeoutMS": 5000, "connectTimeoutMS": 5000}})


def s3_conn_uri(endpoint_url: str) -> str:
    return json.dumps({"conn_type": "aws", "login": "local", "password": "local-secret",
                       "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"}})


class MongoServer:
    """nx-27017 (MongoDB wire protocol on SQLite) as a child process with its own data folder."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "server.pid"

    def start(self, timeout_s: float = 20.0) -> "MongoServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.remove_stale_pid_file()
        binary = Path(sys.executable).parent / "nx-27017"
        self.process = subprocess.Popen(
            [str(binary), "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "-p", str(self.port),
             "--log-file", str(self.data_dir / "server.log"), "--pid-file", str(self.pid_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=self.env,
        )
        self.wait_ready(timeout_s)
        return self

    def remove_stale_pid_file(self) -> None:
        """nx-27017 refuses to start while its pid file names a live process, whatever that process is: drop a
        pid file left by a killed server (its pid now free or another program's); refuse if nx-27017 still runs there."""
        import psutil

        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            self.pid_file.unlink(missing_ok=True)
            return
        try:
            command = " ".join(psutil.Process(pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            command = ""
        if "nx-27017" in command and str(self.data_dir) in command:
            raise RuntimeError(f"nx-27017 (pid {pid}) already serves {self.data_dir}; stop it first")
        self.pid_file.unlink(missing_ok=True)

    def wait_ready(self, timeout_s: float) -> None:
        import pymongo

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {self.process.returncode}; see {self.data_dir / 'server.log'}")
            with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=300) as client:
                client.admin.command("ping")
            return True

        wait_until(answers, timeout_s=timeout_s, interval_s=0.1, what=f"nx-27017 to answer on {self.url}", ignore=(pymongo.errors.PyMongoError,))

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None

    def __enter__(self) -> "MongoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class S3Server:
    """moto's S3 API server in a thread of this process (keeps nothing across restarts)."""

    def __init__(self, port: int = 0):
        self.port = port
        self._server = None
        self.endpoint_url = ""

    def start(self) -> "S3Server":
        """Start (or start again on the same port: moto keeps its buckets in this process)."""
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{self.port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local-secret")

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def airflow_secrets_env(secrets_file: Path) -> dict:
    """JWT, session and Fernet secrets that every process of one Airflow deployment must share (made once, kept)."""
    if not secrets_file.exists():
        import secrets

        from cryptography.fernet import Fernet

        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        secrets_file.write_text(json.dumps({"jwt_secret": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(32),
                                            "fernet_key": Fernet.generate_key().decode()}))
        secrets_file.chmod(0o600)
    stack_secrets = json.loads(secrets_file.read_text())
    return {"AIRFLOW__API_AUTH__JWT_SECRET": stack_secrets["jwt_secret"], "AIRFLOW__API__SECRET_KEY": stack_secrets["secret_key"],
            "AIRFLOW__CORE__FERNET_KEY": stack_secrets["fernet_key"]}


class AirflowStandalone:
    """`airflow standalone` (SQLite, LocalExecutor, scheduler, dag-processor, triggerer, API server) as a child process."""

    def __init__(self, home: Path, env: dict, port: int | None = None):
        self.home = Path(home).resolve()  # absolute: the processes run in it
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # standalone runs `airflow …` by name
        self.env = {**env, "PATH": path, "AIRFLOW_HOME": str(self.home), "AIRFLOW__API__PORT": str(self.port), "AIRFLOW__API__BASE_URL": self.url,
                    **airflow_secrets_env(self.home / "stack-secrets.json")}
        self.process: subprocess.Popen | None = None

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"

    def start(self, timeout_s: float = 180.0) -> "AirflowStandalone":
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, start_new_session=True, cwd=self.home)
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout_s: float) -> None:
        """Wait until the API server answers and this start's scheduler heartbeats (a scheduler of an earlier,
        killed run of the same home still looks healthy for half a minute)."""
        import httpx

        started = datetime.now(timezone.utc) - timedelta(seconds=1)

        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited with {self.process.returncode}; see {self.log_file}")
            scheduler = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=3).json().get("scheduler", {})
            beat = scheduler.get("latest_scheduler_heartbeat")
            return scheduler.get("status") == "healthy" and bool(beat) and datetime.fromisoformat(beat) >= started

        wait_until(healthy, timeout_s=timeout_s, interval_s=1, what=f"Airflow to become healthy (see {self.log_file})",
                   ignore=(httpx.HTTPError, ValueError))

    def admin_password(self) -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

    def client(self):
        from stt.client import AirflowClient

        return AirflowClient(self.url, "admin", self.admin_password())

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None


def stop_process_group(process: subprocess.Popen | None, timeout_s: float = 15.0) -> None:
    """SIGTERM a child's whole process group and wait for all of it (not only the leader: `airflow standalone`
    can exit before its triggerer); SIGKILL what is left after the timeout."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        process.poll()
        return

    def group_gone() -> bool:
        process.poll()
        try:
            os.killpg(process.pid, 0)  # anyone of the group still there?
        except ProcessLookupError:
            return True
        return False

    if poll_until(group_gone, timeout_s=timeout_s, interval_s=0.2):
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
