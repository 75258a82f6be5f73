#!/usr/bin/env bash
# Start the TTS service (port 7206, or $TTS_PORT) and wait until it is ready.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py start tts "$@"
