# Environment of the local embedded stack; sourced by the other scripts (bash).
STT_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export STT_REPO
export STT_HOME="${STT_HOME:-$STT_REPO/local}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$STT_HOME/airflow}"
export AIRFLOW_CONFIG="${AIRFLOW_CONFIG:-$STT_REPO/airflow.cfg}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$STT_REPO/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$STT_REPO/plugins}"
export STT_CACHE_DIR="${STT_CACHE_DIR:-$HOME/.cache/stt-pipeline}"
export PATH="$STT_REPO/.venv/bin:$PATH"
log() { printf '%s [stt] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
