"""Values that airflow.cfg refers to by import path."""

# [database] sql_alchemy_connect_args for the local SQLite metadata database.
SQLITE_CONNECT_ARGS = {"timeout": 30}

# The same setting for PostgreSQL (docker-compose.yaml, the Celery test): SQLite's "timeout" is not a
# psycopg2 argument, so deployments on PostgreSQL point sql_alchemy_connect_args here instead.
POSTGRES_CONNECT_ARGS: dict = {}
