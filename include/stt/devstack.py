"""The local embedded stack for one machine: nx-27017 (Mongo wire protocol), a storage folder and `airflow standalone`.

    python -m stt.devstack up [--demo]   start (or reuse) the stack; --demo transcribes the sample recording
    python -m stt.devstack status        show addresses and process state
    python -m stt.devstack down          stop what `up` started

Run through scripts/run-local.sh, which sets the environment (scripts/env.sh) and installs first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from stt.config import REPO_ROOT
from stt.localstack import MongoServer, free_port, mongo_conn_uri

SAMPLE = REPO_ROOT / "whisper" / "samples" / "jfk.wav"


def stack_home() -> Path:
    return Path(os.environ.get("STT_HOME") or REPO_ROOT / "local")


def state_file() -> Path:
    return stack_home() / "stack.json"


def load_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(state, indent=2))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [stt] {message}", file=sys.stderr, flush=True)


def stack_secrets() -> dict:
    """Secrets every Airflow process of the stack must share (JWT signing, session, Fernet), made once and kept."""
    path = stack_home() / "secrets.json"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"jwt_secret": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(32),
                                    "fernet_key": Fernet.generate_key().decode()}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def stack_env(state: dict) -> dict:
    """The environment every Airflow process of the local stack gets."""
    env = os.environ.copy()
    shared = stack_secrets()
    env.update({
        "AIRFLOW__API_AUTH__JWT_SECRET": shared["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": shared["secret_key"],
        "AIRFLOW__CORE__FERNET_KEY": shared["fernet_key"],
        "AIRFLOW_CONN_STT_MONGO": mongo_conn_uri(state["mongo_port"]),
        "AIRFLOW__API__PORT": str(state["airflow_port"]),
        "AIRFLOW__API__BASE_URL": state["airflow_url"],
        "STT_LOCAL_ROOT": state["storage_root"],
    })
    return env


def start_mongo(state: dict) -> None:
    if alive(state.get("mongo_pid")):
        return
    port = state.get("mongo_port") if state.get("mongo_port") and port_free(state["mongo_port"]) else free_port()
    server = MongoServer(stack_home() / "mongo", port).start()
    state.update(mongo_port=port, mongo_pid=server.process.pid)
    say(f"MongoDB wire-protocol server (nx-27017) on 127.0.0.1:{port}, data in {server.data_dir}")


def wait_healthy(url: str, pid: int, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            raise RuntimeError(f"airflow standalone exited; see {stack_home() / 'airflow' / 'standalone.log'}")
        try:
            health = httpx.get(f"{url}/api/v2/monitor/health", timeout=3).json()
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"Airflow did not become healthy within {timeout_s:.0f}s")


def start_airflow(state: dict) -> None:
    if alive(state.get("airflow_pid")):
        return
    port = 8080 if port_free(8080) else free_port()
    state.update(airflow_port=port, airflow_url=f"http://127.0.0.1:{port}")
    home = Path(os.environ.get("AIRFLOW_HOME") or stack_home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "standalone.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=stack_env(state), start_new_session=True)
    state["airflow_pid"] = process.pid
    save_state(state)
    say(f"starting airflow standalone (log: {home / 'standalone.log'})")
    wait_healthy(state["airflow_url"], process.pid)
    say(f"Airflow is up at {state['airflow_url']}")


def admin_password() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or stack_home() / "airflow")
    generated = home / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text())["admin"]


def demo(state: dict) -> int:
    """Transcribe the sample recording through the REST API and print the transcript."""
    import pymongo

    from stt.client import AirflowClient

    inbox = Path(state["storage_root"]) / "inbox"
    sample = inbox / SAMPLE.name
    shutil.copyfile(SAMPLE, sample)
    client = AirflowClient(state["airflow_url"], "admin", admin_password())
    client.wait_for_dag("stt_transcribe")
    client.unpause("stt_transcribe")
    run = client.trigger("stt_transcribe", {"source": f"file://{sample}", "language": "en", "model": "tiny.en"})
    say(f"triggered {run['dag_run_id']} for file://{sample}")
    final = client.wait_for_run("stt_transcribe", run["dag_run_id"])
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{state['mongo_port']}", serverSelectionTimeoutMS=5000) as mongo:
        job = mongo["stt"]["jobs"].find_one({"run_id": run["dag_run_id"]})
    if final["state"] != "success" or not job or job.get("status") != "COMPLETED":
        say(f"the demo run ended {final['state']}: {job and job.get('error')}")
        return 1
    txt = Path(job["outputs"]["txt"].removeprefix("file://"))
    say(f"job {job['_id']} COMPLETED in {job['timings'].get('total_s')} s; transcript at {txt}")
    print("\n" + txt.read_text())
    return 0


def up(with_demo: bool) -> int:
    state = load_state()
    storage_root = stack_home() / "storage"
    (storage_root / "inbox").mkdir(parents=True, exist_ok=True)
    state["storage_root"] = str(storage_root)
    start_mongo(state)
    save_state(state)
    start_airflow(state)
    save_state(state)
    rc = demo(state) if with_demo else 0
    print(f"""
Airflow UI:   {state['airflow_url']}   (user admin, password {admin_password()})
Your files:   drop recordings into {storage_root / 'inbox'} and trigger DAG stt_transcribe with
              source file://{storage_root / 'inbox'}/<name>; transcripts appear in {storage_root / 'transcripts'}
Job records:  mongodb://127.0.0.1:{state['mongo_port']}/stt  (collection jobs)
Stop:         bash scripts/run-local.sh down
""")
    return rc


def down() -> int:
    state = load_state()
    for name in ("airflow_pid", "mongo_pid"):
        pid = state.get(name)
        if alive(pid):
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
            say(f"stopped {name.removesuffix('_pid')} (pid {pid})")
        state.pop(name, None)
    save_state(state)
    return 0


def status() -> int:
    state = load_state()
    for name in ("airflow", "mongo"):
        print(f"{name}: {'running' if alive(state.get(name + '_pid')) else 'stopped'}")
    print(json.dumps(state, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stt.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--demo", action="store_true", help="transcribe the sample recording after start")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.demo)
    return down() if args.command == "down" else status()


if __name__ == "__main__":
    sys.exit(main())
