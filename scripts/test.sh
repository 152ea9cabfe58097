#!/usr/bin/env bash
# Set everything up (idempotent), then run the test suite. Extra arguments go to pytest.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$STT_REPO"
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  log "pytest collected no tests: treated as a failure"
  exit 1
fi
exit "$rc"
