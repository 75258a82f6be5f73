#!/usr/bin/env bash
# Start the ASR service (port 7205, or $ASR_PORT) and wait until it is ready.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py start asr "$@"
