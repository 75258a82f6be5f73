#!/usr/bin/env bash
# Start every service in the background under gunicorn and wait until each /readyz is 200.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py start "$@"
