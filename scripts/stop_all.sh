#!/usr/bin/env bash
# Stop every running service (SIGTERM: in-flight requests finish first).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py stop "$@"
