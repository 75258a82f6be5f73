#!/usr/bin/env bash
# Show which services are up and ready, with PID, port and memory.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py status "$@"
