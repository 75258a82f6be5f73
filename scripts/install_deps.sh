#!/usr/bin/env bash
# Install one locked dependency set into .venv, exactly: every file's sha256 is checked against the lock
# (pip refuses a file whose hash differs), packages the set does not list are removed, and the result is
# compared with the lock (`pip freeze` must equal it). Sets, each holding the one before: runtime (the
# services on the offline defaults), dev (+ tests and tools), production (+ torch, sentence-transformers,
# transformers), sensevoice (+ FunASR). A venv that already holds a larger set keeps it.
#   bash scripts/install_deps.sh [SET]      (default: dev)
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=(runtime dev production sensevoice)
wanted=${1:-dev}
rank() { local i; for i in "${!SETS[@]}"; do [ "${SETS[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
[ "$(rank "$wanted")" -ge 0 ] || { echo "unknown dependency set '$wanted' (one of: ${SETS[*]})" >&2; exit 2; }
[ -x .venv/bin/python ] || { echo ".venv is missing: run scripts/setup.sh first" >&2; exit 1; }
have=$(cat .venv/suite-deps 2>/dev/null || echo runtime)
[ "$(rank "$have")" -gt "$(rank "$wanted")" ] && wanted=$have
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
quiet "${PIP[@]}" install --quiet --require-hashes -r requirements/pip.txt
quiet "${PIP[@]}" install --quiet --require-hashes --no-deps -r "requirements/$wanted.txt"
quiet "${PIP[@]}" install --quiet --require-hashes --no-deps -r requirements/nodeps.txt
.venv/bin/python scripts/locks.py sync "$wanted"
echo "$wanted" > .venv/suite-deps
echo "  .venv holds exactly requirements/$wanted.txt and requirements/nodeps.txt"
