#!/usr/bin/env bash
# Install everything (idempotent), start the local stack (nx-27017, a storage folder, airflow standalone)
# and transcribe the sample recording.   `bash scripts/run-local.sh down` stops the stack.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$STT_REPO"
case "${1:-up}" in
  up)     bash scripts/setup.sh && exec .venv/bin/python -m stt.devstack up --demo ;;
  down)   exec .venv/bin/python -m stt.devstack down ;;
  status) exec .venv/bin/python -m stt.devstack status ;;
  *)      echo "usage: bash scripts/run-local.sh [up|down|status]" >&2; exit 2 ;;
esac
