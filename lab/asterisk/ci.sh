#!/usr/bin/env bash
# CI entry point for the live Asterisk tests: provision (idempotent; ~35-42 s the first time on a
# fresh machine, ~0.04 s after), start the lab Asterisk, run `pytest -m asterisk`, always stop it.
# Needs root (debootstrap, chroot, bind mounts). Run from anywhere; extra arguments go to pytest.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

"$HERE/provision.sh"
"$HERE/start.sh"
trap '"$HERE/stop.sh"' EXIT

cd "$ROOT"
# The live tests run again on SQLite and on PostgreSQL (CALLD_TEST_PG_URL, as for the main suite).
CALLD_LAB_ASTERISK=1 .venv/bin/pytest -m asterisk -q -p no:cacheprovider "$@"
