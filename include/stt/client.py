"""A small client of Airflow's REST API v2 (token auth), for triggering and following transcription runs."""

from __future__ import annotations

import time

import httpx

from stt.waiting import wait_until

TERMINAL_RUN_STATES = ("success", "failed")


class AirflowClient:
    """Talks to an Airflow 3 API server: `POST /auth/token`, then Bearer calls on `/api/v2`."""

    def __init__(self, base_url: str, username: str, password: str, timeout_s: float = 90.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        response = self._http.post("/auth/token", json={"username": username, "password": password})
        response.raise_for_status()
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, retries: int = 4, **kwargs) -> dict:
        """One API call; a server-side error (HTTP 5xx, e.g. SQLite busy under load) is tried again with backoff."""
        for attempt in range(retries + 1):
            response = self._http.request(method, f"/api/v2{path}", **kwargs)
            if response.status_code < 500 or attempt == retries:
                break
            time.sleep(1.0 * 2**attempt)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} → HTTP {response.status_code}: {response.text}")
        return response.json() if response.content else {}

    def dag(self, dag_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}")

    def wait_for_dag(self, dag_id: str, timeout_s: float = 120.0) -> dict:
        """Wait until the DAG processor has parsed the DAG (new files appear after a parse); TimeoutError if it does not."""
        return wait_until(lambda: self.dag(dag_id), timeout_s=timeout_s, interval_s=1, what=f"Airflow to know DAG {dag_id}", ignore=(RuntimeError,))

    def unpause(self, dag_id: str) -> dict:
        return self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict, run_id: str | None = None) -> dict:
        body = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        try:
            return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        except RuntimeError as exc:
            # With a run id the trigger is idempotent: a retried POST whose first attempt went through finds the run.
            if run_id and "HTTP 409" in str(exc):
                return self.run(dag_id, run_id)
            raise

    def set_pool(self, name: str, slots: int, description: str = "") -> dict:
        """Create a pool, or bring an existing one to these settings (a no-op when it already has them)."""
        wanted = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        try:
            pool = self._call("GET", f"/pools/{name}")
        except RuntimeError as exc:
            if "HTTP 404" not in str(exc):
                raise
            return self._call("POST", "/pools", json=wanted)
        if all(pool.get(key) == value for key, value in wanted.items()):
            return pool
        return self._call("PATCH", f"/pools/{name}", json=wanted)  # a full body: Airflow validates it as a whole pool

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 900.0, on_poll=None) -> dict:
        """The run once it has ended (`on_poll` sees it at every look); TimeoutError if it has not after `timeout_s`."""
        last: dict = {}

        def ended() -> dict | None:
            last.update(run := self.run(dag_id, run_id))
            if on_poll:
                on_poll(run)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_until(ended, timeout_s=timeout_s, interval_s=1, what=lambda: f"run {run_id} to end (still {last.get('state')})")

    def close(self) -> None:
        self._http.close()
