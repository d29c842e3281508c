#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the llama.cpp source vendored in the
# llama-cpp-python sdist on PyPI, and install it (plus the llama SPM vocabulary
# GGUF and the matching gguf-py sources) into a per-version cache folder:
#
#   ${PDP_CACHE_DIR:-<repo>/.cache}/llama-server/<version>/
#       bin/llama-server
#       ggml-vocab-llama-spm.gguf
#       gguf-py/                 (copy of vendor/llama.cpp/gguf-py)
#       GGUF_VERSION             (gguf-py's own version: the `gguf` PyPI release to pip install)
#       BUILD_INFO               (version, sha256, commit, flags, build seconds)
#
# Idempotent: when bin/llama-server already exists it prints the path and exits 0.
# (This llama.cpp has no libcurl option any more: downloads go through cpp-httplib.)
# Only needs gcc/g++, cmake (>= 3.18), make or ninja, and a Python with pip that
# reaches PyPI. No libcurl/openssl dev packages, no npm, no network during the build
# (the web UI download from a Hugging Face bucket is switched off).
#
# Environment knobs:
#   PDP_CACHE_DIR          cache root (default: <repo>/.cache)
#   LLAMA_SERVER_PYTHON    python used for `pip download` (default: <repo>/.venv/bin/python, else python3)
#   LLAMA_SERVER_JOBS      parallel build jobs (default: 2)
#   LLAMA_SERVER_NATIVE    ON (default; -march=native, binary is for this CPU) or OFF (portable AVX2 build)
#   LLAMA_SERVER_KEEP_BUILD=1  keep the unpacked source/build tree (default: removed on success)
set -Eeuo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"
LLAMA_CPP_PYTHON_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"

log() { printf '[llama-server] %s\n' "$*" >&2; }
die() { printf '[llama-server] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "[llama-server] ERROR: failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${PDP_CACHE_DIR:-$REPO_ROOT/.cache}"
DEST="$CACHE_ROOT/llama-server/$LLAMA_CPP_PYTHON_VERSION"
BIN="$DEST/bin/llama-server"

if [[ -x "$BIN" ]]; then
    log "already built: $BIN"
    printf '%s\n' "$BIN"
    exit 0
fi

mkdir -p "$CACHE_ROOT"
# Keep the default in-repo cache out of `git status` without touching .gitignore.
if [[ ! -e "$CACHE_ROOT/.gitignore" ]]; then
    printf '*\n' >"$CACHE_ROOT/.gitignore"
fi

for tool in cmake gcc g++ tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (on Debian: apt-get install -y build-essential cmake)"
done
if command -v ninja >/dev/null 2>&1; then GENERATOR="Ninja"; else
    command -v make >/dev/null 2>&1 || die "neither ninja nor make found (apt-get install -y make)"
    GENERATOR="Unix Makefiles"
fi

PY="${LLAMA_SERVER_PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PY="$REPO_ROOT/.venv/bin/python"; else PY="$(command -v python3 || true)"; fi
fi
[[ -n "$PY" ]] || die "no python found for 'pip download' (set LLAMA_SERVER_PYTHON)"

JOBS="${LLAMA_SERVER_JOBS:-2}"
NATIVE="${LLAMA_SERVER_NATIVE:-ON}"
WORK="$CACHE_ROOT/llama-server/.work-$LLAMA_CPP_PYTHON_VERSION"
SDIST_DIR="$CACHE_ROOT/llama-server/sdist"
SDIST="$SDIST_DIR/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
START=$(date +%s)

# 1. sdist (kept in the cache so a rebuild does not download 77 MB again)
mkdir -p "$SDIST_DIR"
if [[ -f "$SDIST" ]] && echo "$LLAMA_CPP_PYTHON_SHA256  $SDIST" | sha256sum -c --status; then
    log "using cached sdist $SDIST"
else
    rm -f "$SDIST"
    log "downloading llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sdist with $PY -m pip ..."
    "$PY" -m pip download --quiet --no-binary :all: --no-deps \
        -d "$SDIST_DIR" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" \
        || die "pip download of llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION failed"
    [[ -f "$SDIST" ]] || die "pip download did not produce $SDIST"
    echo "$LLAMA_CPP_PYTHON_SHA256  $SDIST" | sha256sum -c --status \
        || die "sha256 mismatch for $SDIST (expected $LLAMA_CPP_PYTHON_SHA256)"
    log "downloaded and verified sha256 ($(du -h "$SDIST" | cut -f1))"
fi

# 2. unpack
rm -rf "$WORK"
mkdir -p "$WORK"
log "unpacking into $WORK"
tar -xzf "$SDIST" -C "$WORK"
SRC="$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
[[ -f "$SRC/CMakeLists.txt" ]] || die "vendored llama.cpp not found at $SRC"
COMMIT="$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)"
GGUF_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/gguf-py/pyproject.toml" | head -n1)"
log "vendored llama.cpp commit: $COMMIT; gguf-py version: ${GGUF_VERSION:-unknown}"

# 3. configure: CPU only, Release, static, no SSL, no web-UI download, no tests/examples.
BUILD="$WORK/build"
log "configuring ($GENERATOR, GGML_NATIVE=$NATIVE)"
cmake -S "$SRC" -B "$BUILD" -G "$GENERATOR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE="$NATIVE" \
    -DGGML_OPENMP=OFF \
    -DGGML_BLAS=OFF \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_LLGUIDANCE=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF \
    >"$WORK/configure.log" 2>&1 || { tail -n 40 "$WORK/configure.log" >&2; die "cmake configure failed (log: $WORK/configure.log)"; }

# 4. build only the llama-server target
log "building target llama-server with -j$JOBS (takes several minutes on 2 cores) ..."
BUILD_START=$(date +%s)
cmake --build "$BUILD" --config Release --target llama-server -j "$JOBS" \
    >"$WORK/build.log" 2>&1 || { tail -n 60 "$WORK/build.log" >&2; die "build failed (log: $WORK/build.log)"; }
BUILD_SECS=$(( $(date +%s) - BUILD_START ))
BUILT="$BUILD/bin/llama-server"
[[ -x "$BUILT" ]] || die "build finished but $BUILT is missing"
"$BUILT" --version >"$WORK/version.txt" 2>&1 || die "built binary does not run: $(cat "$WORK/version.txt")"
log "built in ${BUILD_SECS}s: $(grep -m1 -i version "$WORK/version.txt" || true)"

# 5. install into a staging dir, then move into place atomically
STAGE="$DEST.tmp.$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/bin"
install -m 0755 "$BUILT" "$STAGE/bin/llama-server"
strip "$STAGE/bin/llama-server" 2>/dev/null || true
cp "$SRC/models/ggml-vocab-llama-spm.gguf" "$STAGE/ggml-vocab-llama-spm.gguf"
cp -r "$SRC/gguf-py" "$STAGE/gguf-py"
printf '%s\n' "$GGUF_VERSION" >"$STAGE/GGUF_VERSION"
{
    echo "llama_cpp_python=$LLAMA_CPP_PYTHON_VERSION"
    echo "sdist_sha256=$LLAMA_CPP_PYTHON_SHA256"
    echo "llama_cpp_commit=$COMMIT"
    echo "gguf_py_version=$GGUF_VERSION"
    echo "ggml_native=$NATIVE"
    echo "generator=$GENERATOR"
    echo "jobs=$JOBS"
    echo "build_seconds=$BUILD_SECS"
    echo "total_seconds=$(( $(date +%s) - START ))"
    echo "built_on=$(uname -m) $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$WORK/version.txt"
} >"$STAGE/BUILD_INFO"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$STAGE" "$DEST"

if [[ "${LLAMA_SERVER_KEEP_BUILD:-0}" != "1" ]]; then
    rm -rf "$WORK"
fi

log "installed $BIN ($(du -h "$BIN" | cut -f1)); total $(( $(date +%s) - START ))s"
printf '%s\n' "$BIN"
