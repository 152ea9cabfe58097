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
import signal
import socket
import sys
import time
from pathlib import Path


from stt.config import REPO_ROOT, Settings
from stt.localstack import AirflowStandalone, MongoServer, free_port, mongo_conn_uri

SAMPLE = REPO_ROOT / "whisper" / "samples" / "jfk.wav"
WHISPER_POOL = "whisper"
STEPS_POOL = "stt_steps"


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


def stack_env(state: dict) -> dict:
    """The environment every Airflow process of the local stack gets."""
    env = os.environ.copy()
    env.update({
        "AIRFLOW_CONN_STT_MONGO": mongo_conn_uri(state["mongo_port"]),
        "STT_LOCAL_ROOT": state["storage_root"],
        "STT_WHISPER_POOL": WHISPER_POOL,
        "STT_STEPS_POOL": STEPS_POOL,
    })
    return env


def start_mongo(state: dict) -> None:
    if alive(state.get("mongo_pid")):
        return
    port = state.get("mongo_port") if state.get("mongo_port") and port_free(state["mongo_port"]) else free_port()
    server = MongoServer(stack_home() / "mongo", port).start()
    state.update(mongo_port=port, mongo_pid=server.process.pid)
    say(f"MongoDB wire-protocol server (nx-27017) on 127.0.0.1:{port}, data in {server.data_dir}")


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or stack_home() / "airflow")


def start_airflow(state: dict) -> None:
    if alive(state.get("airflow_pid")):
        return
    port = 8080 if port_free(8080) else free_port()
    airflow = AirflowStandalone(airflow_home(), stack_env(state), port)
    say(f"starting airflow standalone (log: {airflow.log_file})")
    airflow.start()
    state.update(airflow_port=port, airflow_url=airflow.url, airflow_pid=airflow.process.pid)
    say(f"Airflow is up at {airflow.url}")


def admin_password() -> str:
    generated = airflow_home() / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text())["admin"]


def demo(state: dict) -> int:
    """Transcribe the sample recording the way a user would: `stt submit --wait` (REST trigger, progress from MongoDB)."""
    from stt import cli

    say(f"transcribing the sample {SAMPLE.name} (stt submit --wait)")
    return cli.main(["submit", str(SAMPLE), "--language", "en", "--model", "tiny.en", "--wait"])


def size_pools(client) -> None:
    """whisper: cores ÷ threads per whisper-cli; stt_steps (validate, chunk, merge, publish): one per core. The pools
    bound what runs; `[core] parallelism` (airflow.cfg) leaves the executor spare slots for finished tasks'
    lingering supervisors, so a queued task never waits for an executor slot."""
    cores = os.cpu_count() or 1
    client.set_pool(WHISPER_POOL, max(1, cores // Settings.from_env().whisper_threads), "whisper-cli processes at once (CPU cores / threads per process)")
    client.set_pool(STEPS_POOL, cores, "stt_transcribe's short steps at once (validate, chunk, merge, publish)")


def prepare_airflow(state: dict) -> None:
    """Wait for the DAGs, unpause them, and size the whisper pool to the machine."""
    from stt.client import AirflowClient

    client = AirflowClient(state["airflow_url"], "admin", admin_password())
    size_pools(client)
    for dag_id in ("stt_transcribe", "stt_ingest"):
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)
    client.close()


def up(with_demo: bool) -> int:
    state = load_state()
    storage_root = stack_home() / "storage"
    (storage_root / "inbox").mkdir(parents=True, exist_ok=True)
    state["storage_root"] = str(storage_root)
    start_mongo(state)
    save_state(state)
    start_airflow(state)
    save_state(state)
    prepare_airflow(state)
    rc = demo(state) if with_demo else 0
    print(f"""
Airflow UI:   {state['airflow_url']}   (user admin, password {admin_password()})
Your files:   drop recordings into {storage_root / 'inbox'}: stt_ingest picks them up within 2 minutes;
              transcripts appear in {storage_root / 'transcripts'}. Or: .venv/bin/stt submit FILE --wait
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
