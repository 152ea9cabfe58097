"""Where the local stack keeps its state (ports, URLs, the storage root) and its admin password: read by the
stack itself (stt.devstack) and by the CLI, which defaults to the local stack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stt.config import StackSettings


def stack_home() -> Path:
    return StackSettings().home.resolve()


def state_file() -> Path:
    return stack_home() / "stack.json"


def error_log() -> Path:
    return stack_home() / "devstack-errors.log"


def load_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(state, indent=2))


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or stack_home() / "airflow").resolve()


def admin_password() -> str:
    generated = airflow_home() / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text())["admin"]
