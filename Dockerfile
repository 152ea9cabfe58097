# The one image of every Airflow component in docker-compose.yaml (api-server, scheduler, dag-processor,
# triggerer, Celery workers, airflow-init): Python 3.11, ffmpeg, the pinned Python packages, whisper.cpp
# built from source and the models, all baked in (no download at run time).
#
#   docker compose build            # or: docker build -t stt-pipeline .
#
# whisper.cpp is compiled for x86-64-v3 (AVX2/FMA/F16C) so the image runs on any recent x86 server;
# --build-arg STT_CMAKE_ARGS= builds for the CPU of the build machine instead (fastest, not portable).
FROM python:3.11-slim-bookworm

ARG STT_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
ARG STT_MODELS="tiny.en base"
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    STT_CACHE_DIR=/opt/stt-cache \
    STT_OFFLINE=1

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ffmpeg build-essential cmake git curl \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --create-home airflow \
 && mkdir -p /opt/airflow/logs /opt/stt "${STT_CACHE_DIR}" \
 && chown -R airflow:0 /opt/airflow /opt/stt "${STT_CACHE_DIR}"

WORKDIR /opt/stt

# 1. Python packages (pinned by constraints.txt): changes only with the requirement files.
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# 2. whisper.cpp and the models, into the cache inside the image (whisper/bin and whisper/models link there).
COPY --chown=airflow:0 whisper/ whisper/
USER airflow
RUN STT_CMAKE_ARGS="${STT_CMAKE_ARGS}" PYTHON=python bash whisper/provision.sh --models "${STT_MODELS}" \
 && rm -rf "${STT_CACHE_DIR}/downloads" "${STT_CACHE_DIR}/tmp" \
 && whisper/bin/whisper-cli --help >/dev/null

# 3. The pipeline: package (editable, so DAG files and tasks import the code in /opt/stt/include), DAGs, config.
USER root
COPY pyproject.toml airflow.cfg ./
COPY include/ include/
COPY dags/ dags/
COPY plugins/ plugins/
COPY scripts/ scripts/
RUN pip install --no-deps -e . \
 && chown -R airflow:0 /opt/stt/include

USER airflow
ENV AIRFLOW_CONFIG=/opt/stt/airflow.cfg \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/stt/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/stt/plugins
EXPOSE 8080
CMD ["airflow", "version"]
