"""Values that airflow.cfg refers to by import path."""

# [database] sql_alchemy_connect_args for the local SQLite metadata database.
SQLITE_CONNECT_ARGS = {"timeout": 30}
