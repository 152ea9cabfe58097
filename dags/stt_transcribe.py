"""stt_transcribe: one recording → prepare (validate, chunk) → transcribe (mapped per batch of chunks) → finish (merge, publish).

Thin on purpose: the steps live in include/stt/pipeline.py.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from stt.callbacks import default_args
from stt.dag_params import transcribe_params
from stt.task_runtime import job_id_from_context, run_step, worker_id
from stt.config import Settings

SETTINGS = Settings.from_env()


@dag(
    dag_id="stt_transcribe",
    schedule=None,
    catchup=False,
    params=transcribe_params(SETTINGS),
    default_args=default_args(),
    max_active_runs=SETTINGS.airflow.max_active_jobs,
    tags=["stt"],
    doc_md=__doc__,
)
def stt_transcribe():
    # Three task instances for a one-batch job: each costs scheduling, a task process and API calls, a third of
    # the machine on an inbox of short files when every step was a task of its own.
    # multiple_outputs=False: a task's dict result is one XCom, not one more per key (each is an API call and a
    # database write).
    @task(pool=SETTINGS.airflow.steps_pool, multiple_outputs=False)
    def prepare() -> list[dict]:
        """validate → chunk: the transcription batches; the job travels as the XCom `job`."""
        from stt import pipeline

        context = get_current_context()
        run = context["dag_run"]
        job, batches = run_step(pipeline.prepare, dict(context["params"]), job_id=job_id_from_context(context), dag_id=run.dag_id, run_id=run.run_id)
        context["ti"].xcom_push(key="job", value=job)
        return batches

    @task(
        multiple_outputs=False,
        map_index_template="{{ batch_label }}",
        pool=SETTINGS.airflow.whisper_pool,
        execution_timeout=timedelta(seconds=SETTINGS.transcribe_timeout_s()),
    )
    def transcribe(job: dict, batch: dict) -> dict:
        from stt import pipeline

        context = get_current_context()
        chunks = batch["chunks"]
        context["batch_label"] = f"batch {batch['batch']}: {len(chunks)} chunk(s), {sum(c['duration_s'] for c in chunks):.0f}s"
        return run_step(pipeline.transcribe, job, batch, attempt=context["ti"].try_number, worker=worker_id())

    @task(pool=SETTINGS.airflow.steps_pool, multiple_outputs=False)
    def finish(job: dict, batch_results: list[dict]) -> dict:
        """merge → publish: the published transcripts by format."""
        from stt import pipeline

        return run_step(pipeline.finish, job, list(batch_results))

    batches = prepare()
    job = batches["job"]
    finish(job, transcribe.partial(job=job).expand(batch=batches))


stt_transcribe()
