#!/usr/bin/env bash
# Would a fresh install break today? Resolves the top-level requirements (requirements/*.in) afresh, without
# the lock, so every transitive package takes the newest version the registry serves now; installs them in a
# throwaway venv, prints what moved against the lock, and runs the fast tests (not slow) on that venv.
# Exit status: the tests'. CI runs it only when SUITE_FRESH_RESOLVE=1; the set-up never uses it.
#   bash scripts/fresh_resolve.sh [PROFILE] [pytest options]    (PROFILE: production (default, what the tests
#   need) or dev)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-production}
shift || true
case "$profile" in
    dev) sets=(runtime dev) ;;
    production) sets=(runtime dev production) ;;
    *) echo "profile: dev or production" >&2; exit 2 ;;
esac
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for name in "${sets[@]}"; do grep -vE '^\s*-[rc] ' "requirements/$name.in"; done > "$WORK/top.in"
printf '\n==> Resolving %s afresh (%s top-level requirements)\n' "$profile" "$(grep -cE '^[A-Za-z]' "$WORK/top.in")"
python3 -m venv "$WORK/venv"
PIP=("$WORK/venv/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet -r requirements/pip.txt 2> >(grep -v "^WARNING: Location" >&2)
"${PIP[@]}" uninstall --quiet -y setuptools  # the venv's own; a requirement that needs it brings it back
"${PIP[@]}" install --quiet -r "$WORK/top.in" 2> >(grep -v "^WARNING: Location" >&2)
"${PIP[@]}" install --quiet --no-deps -r requirements/nodeps.txt 2> >(grep -v "^WARNING: Location" >&2)
"${PIP[@]}" freeze --all > "$WORK/fresh.txt"
cat requirements/"$profile".txt requirements/nodeps.txt requirements/pip.txt > "$WORK/locked.txt"
printf '\n==> What a fresh resolve installs that the lock does not (locked -> fresh)\n'
python3 scripts/locks.py diff "$WORK/locked.txt" "$WORK/fresh.txt"
ln -s "$(pwd)/.venv/bin/llama-server" "$WORK/venv/bin/llama-server"
printf '\n==> Fast tests on the fresh venv\n'
"$WORK/venv/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider "$@"
