"""Values that airflow.cfg refers to by import path."""

from __future__ import annotations

import sys

# How long a connection to the local SQLite metadata database waits for the write lock before "database is
# locked". The scheduler, DAG processor and triggerer wait 30 s: with the default 5 s the scheduler crashed
# under many mapped tasks. The API server waits 3 s. Airflow's audit-log write for a REST request (a trigger,
# an unpause) commits inside the server's event loop. A request running in the server's thread pool can hold
# the lock until that same loop lets it commit, so the loop waits on itself until the timeout. At 30 s every
# API call stood still for 30 s (twice while the benchmark triggered its 20 runs). At 3 s the REST call gets
# an HTTP 500 after 3 s, and callers retry it (stt.client retries a 5xx; tasks retry their API calls).
SQLITE_LOCK_TIMEOUT_S = 30.0
API_SERVER_SQLITE_LOCK_TIMEOUT_S = 3.0


def airflow_command(argv: list[str]) -> str:
    """The Airflow command this process runs (`scheduler` for `airflow scheduler …`), "" when there is none."""
    return argv[1] if len(argv) > 1 else ""


def sqlite_lock_timeout(argv: list[str]) -> float:
    """The lock timeout for this Airflow process (`airflow api-server …` or any other command)."""
    return API_SERVER_SQLITE_LOCK_TIMEOUT_S if airflow_command(argv) == "api-server" else SQLITE_LOCK_TIMEOUT_S


# [database] sql_alchemy_connect_args for the local SQLite metadata database.
SQLITE_CONNECT_ARGS = {"timeout": sqlite_lock_timeout(sys.argv)}

# The same setting for PostgreSQL (docker-compose.yaml, the Celery test): SQLite's "timeout" is not a
# psycopg2 argument, so deployments on PostgreSQL point sql_alchemy_connect_args here instead.
POSTGRES_CONNECT_ARGS: dict = {}
