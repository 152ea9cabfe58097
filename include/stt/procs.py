"""Child processes (whisper-cli, ffmpeg, ffprobe) that never outlive the task that started them.

Each runs in a process group of its own, dies with its parent (`setpriv --pdeathsig KILL`: a task process
killed with SIGKILL by a lost heartbeat or from the UI takes its children with it) and is killed, group and
all, on every other way out of the code that waits for it (timeout, exception, KeyboardInterrupt).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


# util-linux's setpriv sets the parent-death signal and execs the command (same pid, so the group is the command's).
_SETPRIV = shutil.which("setpriv")


def command(cmd: list[str]) -> list[str]:
    """`cmd` wrapped so that it is killed when the process that started it dies."""
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if _SETPRIV else list(cmd)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process's whole group and reap it; nothing to do when it has already gone."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@contextmanager
def spawned(cmd: list[str], *, nice: int = 0, **popen) -> Iterator[subprocess.Popen]:
    """Start `cmd` in a group of its own; on leaving the block, whatever the way out, kill what still runs.
    `nice` > 0 lowers its CPU priority by that much."""
    proc = subprocess.Popen(command(cmd), start_new_session=True, **popen)
    try:
        if nice > 0:  # before the program has started its threads, so they inherit the priority
            os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
        yield proc
    finally:
        kill_group(proc)


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """A running process's peak resident memory so far (VmHWM), in MB; None once it has gone (or off Linux).
    Read while the child runs: the rusage wait4 reports for a child started with vfork (as subprocess does)
    also counts its parent's own peak."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def own_peak_rss_mb() -> float:
    """This process's peak resident memory since it started, in MB: VmHWM (ru_maxrss would also count the pages
    of the process it was forked from, which Linux carries across exec); ru_maxrss off Linux."""
    peak = peak_rss_mb()
    return peak if peak is not None else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def unique_memory_mb(pid: int | str = "self") -> float | None:
    """Memory only this process holds (its private pages: a forked process shares the rest with its parent), in MB;
    None off Linux or once it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            kb = sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except (OSError, ValueError):
        return None
    return round(kb / 1024, 1)


def run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run to completion and capture its output; subprocess.TimeoutExpired (the group killed) past `timeout_s`."""
    with spawned(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        out, err = proc.communicate(timeout=timeout_s)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
