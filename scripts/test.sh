#!/usr/bin/env bash
# The test command: ruff (lint, then format check), then the whole pytest suite (pass pytest options through, e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
