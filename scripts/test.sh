#!/usr/bin/env bash
# The test command: the production dependency set (the parity tests need sentence-transformers; installed
# from the lock once, then a no-op), ruff (lint, then format check), then the whole pytest suite (pass
# pytest options through, e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh production
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
