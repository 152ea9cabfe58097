"""`bash scripts/run-local.sh` can be repeated: up while the stack runs (twice at once), up after a crash (the
`airflow standalone` killed with SIGKILL and its children left behind; nx-27017 killed, a stale pid file, its port
taken), down twice after everything was killed at once, up after that with Airflow's port taken; `status` tells the
truth at every step.

One private stack (STT_HOME in a temporary folder, free ports) goes through all cases; the sample is transcribed once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pymongo
import pytest

from conftest import REPO, normalise
from stt import devstack
from stt.client import AirflowClient
from stt.localstack import free_port
from stt.waiting import poll_until, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path, monkeypatch):
    """STT_HOME of the stack under test; at the end `down`, and SIGKILL for anything of it still running."""
    monkeypatch.setenv("STT_HOME", str(tmp_path))  # devstack's own functions below look at this stack
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    yield tmp_path
    subprocess.run(["bash", "scripts/run-local.sh", "down"], cwd=REPO, env=user_env(tmp_path), capture_output=True, timeout=120)
    for process in devstack.stack_processes(devstack.load_state()):
        process.kill()


def user_env(home: Path, **extra: str) -> dict:
    """A user's shell: no Airflow variables (scripts/env.sh sets them), the stack in `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(STT_HOME=str(home), STT_SCRATCH_DIR=str(home / "scratch"), **extra)
    return env


def run_local(env: dict, *args: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(["bash", "scripts/run-local.sh", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    print(f"run-local.sh {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.0f}s")
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    return result


def stack_messages(result: subprocess.CompletedProcess) -> str:
    return "\n".join(line for line in result.stderr.splitlines() if "[stt]" in line)


def state_of(home: Path) -> dict:
    return json.loads((home / "stack.json").read_text())


def assert_stack_answers(home: Path) -> dict:
    """Airflow's API reports a healthy database and scheduler; nx-27017 answers a ping. Returns the stack's state."""
    state = state_of(home)
    health = httpx.get(f"{state['airflow_url']}/api/v2/monitor/health", timeout=30).json()
    assert health["metadatabase"]["status"] == health["scheduler"]["status"] == "healthy", health
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{state['mongo_port']}", serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
    return state


def stack_pids(kind) -> set[int]:
    return {p.pid for p in devstack.stack_processes(devstack.load_state()) if kind(p)}


def kill_9(pids: set[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    poll_until(lambda: not any(pid_alive(pid) for pid in pids), timeout_s=10, interval_s=0.1)


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listen_on(port: int, timeout_s: float = 30.0) -> socket.socket:
    """Another program on `port`, as soon as the port is free (a server killed a moment ago may still hold it
    while the kernel tears it down)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: the port may have connections in TIME_WAIT

    def bound() -> bool:
        sock.bind(("127.0.0.1", port))
        return True

    wait_until(bound, timeout_s=timeout_s, interval_s=0.2, what=f"port {port} to be free", ignore=(OSError,))
    sock.listen()
    return sock


def whisper_pool_slots(home: Path, state: dict) -> int:
    password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    client = AirflowClient(state["airflow_url"], "admin", password)
    try:
        return client._call("GET", f"/pools/{devstack.WHISPER_POOL}")["slots"]
    finally:
        client.close()


def test_run_local_is_safe_to_repeat_and_recovers_from_crashes(home):
    env = user_env(home, STT_AIRFLOW_PORT=str(free_port()))
    is_airflow = lambda p: not devstack.is_mongo(p)  # noqa: E731

    # 1. First start, with the sample transcribed.
    first = run_local(env, "up")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "ask not what your country can do for you" in normalise(first.stdout)
    state = assert_stack_answers(home)
    assert state["airflow_port"] == int(env["STT_AIRFLOW_PORT"])

    # 2. Two more `up` at once while it runs (with another whisper pool size): both keep the running stack.
    resized = {**env, "STT_WHISPER_THREADS": "2"}
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: run_local(resized, "up", "--no-demo"), range(2)))
    for result in again:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Airflow already running" in result.stderr and "nx-27017) already running" in result.stderr
        assert "transcribing the sample" not in result.stderr
    assert state_of(home) == state, "a second `up` restarted a running stack"
    assert whisper_pool_slots(home, state) == max(1, (os.cpu_count() or 1) // 2)

    status = run_local(env, "status")
    assert status.returncode == 0 and "mongo:   up" in status.stdout and "airflow: up" in status.stdout, status.stdout

    # 3. `airflow standalone` killed with SIGKILL: its scheduler, API server and workers are left running.
    left_behind = stack_pids(is_airflow) - {state["airflow_pid"]}
    kill_9({state["airflow_pid"]})
    status = run_local(env, "status")
    assert status.returncode == 1 and "left by an `airflow standalone` that is gone" in status.stdout, status.stdout
    repaired = run_local(env, "up", "--no-demo")
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "left from a run whose `airflow standalone` is gone" in stack_messages(repaired)
    assert not any(pid_alive(pid) for pid in left_behind), "processes of the killed run survived `up`"
    state = assert_stack_answers(home)
    assert state["airflow_port"] == int(env["STT_AIRFLOW_PORT"])

    # 4. nx-27017 killed with SIGKILL; its pid file names a live process that is not nx-27017; its port is taken.
    kill_9(stack_pids(devstack.is_mongo))
    (home / "mongo" / "server.pid").write_text(str(os.getpid()))
    with listen_on(state["mongo_port"]):
        status = run_local(env, "status")
        assert status.returncode == 1 and "mongo:   stopped" in status.stdout, status.stdout
        moved = run_local(env, "up", "--no-demo")
    assert moved.returncode == 0, moved.stderr[-3000:]
    messages = stack_messages(moved)
    assert f"port {state['mongo_port']} is taken by another program; MongoDB uses port" in messages
    assert "Airflow runs with the address of an earlier MongoDB" in messages
    new_state = assert_stack_answers(home)
    assert new_state["mongo_port"] != state["mongo_port"]

    # 5. Everything killed with SIGKILL at once; then down twice (nothing to stop).
    kill_9(stack_pids(lambda p: True))
    status = run_local(env, "status")
    assert status.returncode == 1 and "mongo:   stopped" in status.stdout and "airflow: stopped" in status.stdout, status.stdout
    for _ in range(2):
        down = run_local(env, "down")
        assert down.returncode == 0 and "the stack was not running" in down.stderr

    # 6. A setting `up` cannot use: one line that says what to change, no traceback.
    wrong = run_local({**env, "STT_AIRFLOW_PORT": "eighty"}, "up", "--no-demo")
    assert wrong.returncode == 1
    assert "STT_AIRFLOW_PORT='eighty' is not a port number" in stack_messages(wrong).splitlines()[-1]

    # 7. up after the crash and the downs while another program holds the Airflow port (the one used last time,
    #    also the preferred one): Airflow moves to a free port.
    assert new_state["airflow_port"] == int(env["STT_AIRFLOW_PORT"])
    with listen_on(new_state["airflow_port"]):
        after_down = run_local(env, "up", "--no-demo")
    assert after_down.returncode == 0, after_down.stderr[-3000:]
    assert f"port {new_state['airflow_port']} is taken by another program; Airflow uses port" in stack_messages(after_down)
    final = assert_stack_answers(home)
    assert final["airflow_port"] != new_state["airflow_port"] and final["mongo_port"] == new_state["mongo_port"]

    # 8. down stops all of it; status says so.
    assert run_local(env, "down").returncode == 0
    assert devstack.stack_processes(devstack.load_state()) == []
    status = run_local(env, "status")
    assert status.returncode == 1 and "mongo:   stopped" in status.stdout and "airflow: stopped" in status.stdout
