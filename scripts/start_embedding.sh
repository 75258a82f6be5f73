#!/usr/bin/env bash
# Start the embedding service (port 7202, or $EMBEDDING_PORT) and wait until it is ready.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py start embedding "$@"
