#!/usr/bin/env bash
# Start the LLM service (port 7207, or $LLM_PORT) and wait until it is ready.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py start llm "$@"
