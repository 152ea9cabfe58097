"""The local embedded stack for one machine: nx-27017 (Mongo wire protocol), a storage folder and `airflow standalone`.

    python -m stt.devstack up [--demo]   start the stack, or keep what already runs; --demo transcribes the sample recording
    python -m stt.devstack status        say what runs and whether it answers (exit 0 only when the whole stack is up)
    python -m stt.devstack down          stop every process of the stack

`up` and `down` can be repeated and survive a crash: they find the stack's processes by what the processes carry (a
mark in their environment, the Airflow home as working directory), not by pid files; `up` stops the leftovers of a
killed run and moves a server to a free port when another program has taken its port.
STT_HOME is the stack's folder (default: local/ in the repository); STT_AIRFLOW_PORT the Airflow port to prefer
(default 8080). Run through scripts/run-local.sh, which sets the environment (scripts/env.sh) and installs first.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from stt.config import REPO_ROOT, Settings, StackSettings
from stt.localstack import AirflowStandalone, MongoServer, free_port, mongo_conn_uri
from stt.stack_state import admin_password, airflow_home, error_log, load_state, save_state, stack_home
from stt.waiting import poll_until

SAMPLE = REPO_ROOT / "whisper" / "samples" / "jfk.wav"
WHISPER_POOL = "whisper"
STEPS_POOL = "stt_steps"
STACK_MARK = "STT_STACK_HOME"  # in the environment of every process of the stack: its STT_HOME
HEALTH_GRACE_S = 30.0  # how long a running but unhealthy Airflow gets before `up` restarts it


class StackError(Exception):
    """A problem `up` cannot solve by itself; the message says what is wrong and how to fix it."""


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [stt] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stack_lock(timeout_s: float = 600.0):
    """One `up` or `down` at a time per STT_HOME; a second one waits for the first."""
    stack_home().mkdir(parents=True, exist_ok=True)
    with open(stack_home() / "stack.lock", "w") as lock:

        def locked() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        if not locked():
            say("another `run-local.sh up` or `down` is at work on this stack: waiting for it")
            if not poll_until(locked, timeout_s=timeout_s, interval_s=0.5):
                raise StackError(f"another `run-local.sh up` or `down` has held {lock.name} for {timeout_s:.0f}s; "
                                 "wait for it or end it, then try again")
        yield


# ----- the stack's processes -----

def stack_processes(state: dict) -> list:
    """The processes of this stack and all their descendants. A process is of the stack when its environment has
    the stack's mark, or it runs airflow in the stack's Airflow home (its working directory), or it is left in a
    process group `up` recorded and runs airflow or nx-27017. (Airflow's processes that retitle themselves, such as
    the API server, the executor's workers and task processes, no longer show their environment.)"""
    import psutil

    home = str(stack_home())
    workdir = str(airflow_home())
    groups = {state.get(name) for name in ("airflow_pid", "mongo_pid")} - {None}
    own = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    children: dict[int, list] = {}
    roots = []
    for process in psutil.process_iter(["ppid", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        children.setdefault(process.info["ppid"], []).append(process)
        if process.pid in own:
            continue
        command = " ".join(process.info["cmdline"] or ())
        try:
            if process.environ().get(STACK_MARK) == home or ("airflow" in command and process.cwd() == workdir):
                roots.append(process)
            elif groups and os.getpgid(process.pid) in groups and any(
                    name in command for name in ("airflow", "nx-27017")):
                roots.append(process)
        except (psutil.Error, OSError):
            continue
    found = {}
    while roots:
        process = roots.pop()
        if process.pid not in found and process.pid not in own:
            found[process.pid] = process
            roots.extend(children.get(process.pid, ()))
    return list(found.values())


def is_mongo(process) -> bool:
    import psutil

    try:
        return "nx-27017" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def is_standalone(process) -> bool:
    import psutil

    try:
        return process.cmdline()[-1:] == ["standalone"]
    except psutil.Error:
        return False


def stop_processes(processes: list, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL whatever has not ended after the timeout."""
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def stop_until_gone(kind, state: dict, timeout_s: float = 20.0) -> int:
    """Stop the stack's processes that `kind` selects, again until none are left (a scheduler may start a task
    while it is told to stop). Returns how many were stopped."""
    stopped = 0
    for _ in range(5):
        processes = [p for p in stack_processes(state) if kind(p)]
        if not processes:
            break
        stop_processes(processes, timeout_s)
        stopped += len(processes)
    return stopped


def port_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (a socket left in TIME_WAIT does not count: the servers reuse the address)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(what: str, *candidates: int | None) -> int:
    """The first free port among the candidates (the one used last time, a preferred one), else a free one."""
    wanted = [port for port in candidates if port]
    port = next((port for port in wanted if port_free(port)), None) or free_port()
    if wanted and port != wanted[0]:
        say(f"port {wanted[0]} is taken by another program; {what} uses port {port} instead")
    return port


def preferred_airflow_port() -> int:
    value = StackSettings().airflow_port
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"STT_AIRFLOW_PORT={value!r} is not a port number; set it to one (e.g. 8080) or unset it")
    return int(value)


# ----- MongoDB (nx-27017) -----

def mongo_answers(port: int | None) -> bool:
    import pymongo

    if not port:
        return False
    try:
        with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=5000) as client:
            client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False


def ensure_mongo(state: dict) -> None:
    """Keep a running nx-27017 that answers on its port; otherwise stop what is left of it and start one."""
    running = [p for p in stack_processes(state) if is_mongo(p)]
    if running and mongo_answers(state.get("mongo_port")):
        say(f"MongoDB wire-protocol server (nx-27017) already running on 127.0.0.1:{state['mongo_port']}")
        return
    if running:
        say(f"nx-27017 runs but does not answer on its port ({state.get('mongo_port')}): restarting it")
        stop_until_gone(is_mongo, state)
    port = pick_port("MongoDB", state.get("mongo_port"))
    server = MongoServer(stack_home() / "mongo", port, env={**os.environ, STACK_MARK: str(stack_home())})
    try:
        server.start()
    except Exception as exc:
        server.stop()
        raise StackError(f"nx-27017 did not start: {exc} (log: {server.data_dir / 'server.log'})") from exc
    state.update(mongo_port=port, mongo_pid=server.process.pid)
    say(f"MongoDB wire-protocol server (nx-27017) on 127.0.0.1:{port}, data in {server.data_dir}")


# ----- Airflow -----

def stack_env(state: dict) -> dict:
    """The environment every Airflow process of the local stack gets."""
    env = os.environ.copy()
    env.update({
        STACK_MARK: str(stack_home()),
        "AIRFLOW_CONN_STT_MONGO": mongo_conn_uri(state["mongo_port"]),
        "STT_LOCAL_ROOT": state["storage_root"],
        "STT_WHISPER_POOL": WHISPER_POOL,
        "STT_STEPS_POOL": STEPS_POOL,
    })
    return env


def airflow_health(url: str | None) -> dict:
    """The API server's health report ({} when it does not answer)."""
    import httpx

    if not url:
        return {}
    try:
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return {}


def airflow_healthy(health: dict) -> bool:
    return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))


def health_summary(health: dict) -> str:
    return ", ".join(f"{part} {value.get('status')}" for part, value in health.items()) or "no answer"


def airflow_problem(state: dict, processes: list) -> str:
    """Why the running Airflow cannot be kept ('' when it can)."""
    import psutil

    standalone = [p for p in processes if is_standalone(p)]
    if not standalone:
        return "Airflow processes are left from a run whose `airflow standalone` is gone"
    try:
        mongo_conn = standalone[0].environ().get("AIRFLOW_CONN_STT_MONGO")
    except psutil.Error:
        mongo_conn = None
    if mongo_conn != mongo_conn_uri(state["mongo_port"]):
        return "Airflow runs with the address of an earlier MongoDB"
    url = state.get("airflow_url")
    if not poll_until(lambda: airflow_healthy(airflow_health(url)), timeout_s=HEALTH_GRACE_S, interval_s=1):
        return f"Airflow runs but is not healthy at {url} ({health_summary(airflow_health(url))})"
    return ""


def ensure_airflow(state: dict) -> None:
    """Keep a healthy `airflow standalone` of this stack; otherwise stop what is left of it and start one."""
    running = [p for p in stack_processes(state) if not is_mongo(p)]
    if running:
        problem = airflow_problem(state, running)
        if not problem:
            say(f"Airflow already running at {state['airflow_url']}")
            return
        say(f"{problem}: stopping its {len(running)} processes and starting it again")
        stop_until_gone(lambda p: not is_mongo(p), state, timeout_s=5.0)  # a restart loses running tasks anyway
    port = pick_port("Airflow", state.get("airflow_port"), preferred_airflow_port())
    airflow = AirflowStandalone(airflow_home(), stack_env(state), port)
    say(f"starting airflow standalone (log: {airflow.log_file})")
    try:
        airflow.start()
    except (RuntimeError, TimeoutError) as exc:
        raise StackError(f"Airflow did not start: {exc}") from exc
    state.update(airflow_port=port, airflow_url=airflow.url, airflow_pid=airflow.process.pid)
    say(f"Airflow is up at {airflow.url}")


def size_pools(client) -> None:
    """whisper: cores ÷ threads per whisper-cli; stt_steps (prepare, finish): one per core. The pools
    bound what runs; `[core] parallelism` (airflow.cfg) leaves the executor spare slots for finished tasks'
    lingering supervisors, so a queued task never waits for an executor slot."""
    cores = os.cpu_count() or 1
    client.set_pool(WHISPER_POOL, max(1, cores // Settings.from_env().whisper.threads), "whisper-cli processes at once (CPU cores / threads per process)")
    client.set_pool(STEPS_POOL, cores, "stt_transcribe's short tasks at once (prepare, finish)")


def prepare_airflow(state: dict) -> None:
    """Size the pools to the machine, wait for the DAGs and unpause them."""
    from stt.client import AirflowClient

    client = AirflowClient(state["airflow_url"], "admin", admin_password())
    try:
        size_pools(client)
        for dag_id in ("stt_transcribe", "stt_ingest"):
            try:
                client.wait_for_dag(dag_id)
            except TimeoutError:
                raise StackError(f"Airflow has no DAG {dag_id}: {dag_import_error(client, dag_id)}") from None
            client.unpause(dag_id)
    finally:
        client.close()


def dag_import_error(client, dag_id: str) -> str:
    """The last line of the import error of dags/<dag_id>.py, or a pointer to where to look."""
    errors = client._call("GET", "/importErrors", params={"limit": 100}).get("import_errors", [])
    for error in errors:
        if Path(error["filename"]).stem == dag_id:
            return f"{error['filename']} fails to import: {error['stack_trace'].strip().splitlines()[-1]}"
    return f"it was not parsed in time; see {airflow_home() / 'logs'} and the UI's DAG import errors"


# ----- commands -----

def demo(state: dict) -> int:
    """Transcribe the sample recording the way a user would: `stt submit --wait` (REST trigger, progress from MongoDB)."""
    from stt import cli

    say(f"transcribing the sample {SAMPLE.name} (stt submit --wait)")
    return cli.main(["submit", str(SAMPLE), "--language", "en", "--model", "tiny.en", "--wait"])


def up(with_demo: bool) -> int:
    with stack_lock():
        state = load_state()
        storage_root = stack_home() / "storage"
        (storage_root / Settings.from_env().storage.inbox_prefix).mkdir(parents=True, exist_ok=True)
        state["storage_root"] = str(storage_root)
        ensure_mongo(state)
        save_state(state)
        ensure_airflow(state)
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
    with stack_lock():
        state = load_state()
        stopped = {"Airflow": stop_until_gone(lambda p: not is_mongo(p), state), "nx-27017": stop_until_gone(is_mongo, state)}
        parts = [f"{name} ({count} processes)" for name, count in stopped.items() if count]
        say(f"stopped {' and '.join(parts)}" if parts else "the stack was not running")
        for name in ("airflow_pid", "mongo_pid"):
            state.pop(name, None)
        if state:
            save_state(state)
    return 0


def status() -> int:
    """One line per server: up (and answering), running but broken, or stopped. Exit 0 only when both are up."""
    state = load_state()
    processes = stack_processes(state)
    mongo = [p for p in processes if is_mongo(p)]
    airflow = [p for p in processes if not is_mongo(p)]
    mongo_up = bool(mongo) and mongo_answers(state.get("mongo_port"))
    has_standalone = any(is_standalone(p) for p in airflow)
    health = airflow_health(state.get("airflow_url")) if has_standalone else {}
    airflow_up = airflow_healthy(health)
    if mongo_up:
        print(f"mongo:   up, answering on 127.0.0.1:{state['mongo_port']}")
    elif mongo:
        print(f"mongo:   running but not answering on its port ({state.get('mongo_port')})")
    else:
        print("mongo:   stopped")
    if airflow_up:
        print(f"airflow: up, healthy at {state['airflow_url']}")
    elif has_standalone:
        print(f"airflow: running but not healthy at {state.get('airflow_url')} ({health_summary(health)})")
    elif airflow:
        print(f"airflow: {len(airflow)} processes left by an `airflow standalone` that is gone")
    else:
        print("airflow: stopped")
    if (mongo or airflow) and not (mongo_up and airflow_up):
        print("`bash scripts/run-local.sh up` repairs it; `… down` stops it")
    return 0 if mongo_up and airflow_up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stt.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=False,
                        help="transcribe the sample recording after start (--no-demo: do not)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(args.demo)
        return down() if args.command == "down" else status()
    except StackError as exc:
        say(str(exc))
    except KeyboardInterrupt:
        say(f"interrupted; `bash scripts/run-local.sh {args.command}` again finishes the job")
        return 130
    except Exception as exc:  # a one-line message, the traceback in a file
        error_log().parent.mkdir(parents=True, exist_ok=True)
        with open(error_log(), "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {args.command}\n{traceback.format_exc()}\n")
        say(f"{args.command} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            f"(details in {error_log()})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
