#!/usr/bin/env bash
# Install everything (idempotent), start the local stack (nx-27017, a storage folder, airflow standalone)
# and transcribe the sample recording.   Safe to repeat: `up` keeps what runs and repairs what a crash left.
#   bash scripts/run-local.sh [up [--no-demo]]   start (--no-demo: skip the sample transcription)
#   bash scripts/run-local.sh status             what runs and whether it answers (exit 0 only when all is up)
#   bash scripts/run-local.sh down               stop the stack
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$STT_REPO"
command="${1:-up}"
[ $# -gt 0 ] && shift
case "$command" in
  up)     bash scripts/setup.sh && exec .venv/bin/python -m stt.devstack up --demo "$@" ;;
  down)   exec .venv/bin/python -m stt.devstack down ;;
  status) exec .venv/bin/python -m stt.devstack status ;;
  *)      echo "usage: bash scripts/run-local.sh [up [--no-demo]|down|status]" >&2; exit 2 ;;
esac
