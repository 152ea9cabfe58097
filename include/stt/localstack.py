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
import time
from pathlib import Path


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

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> "MongoServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = Path(sys.executable).parent / "nx-27017"
        self.process = subprocess.Popen(
            [str(binary), "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "-p", str(self.port),
             "--log-file", str(self.data_dir / "server.log"), "--pid-file", str(self.data_dir / "server.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        import pymongo

        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {self.process.returncode}; see {self.data_dir / 'server.log'}")
            try:
                with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=300) as client:
                    client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> "MongoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class S3Server:
    """moto's S3 API server in a thread of this process (keeps nothing across restarts)."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> "S3Server":
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
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
