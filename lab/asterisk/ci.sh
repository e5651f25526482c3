#!/usr/bin/env bash
# CI entry point for the live Asterisk tests: provision (idempotent; ~35-42 s the first time on a
# fresh machine, ~0.04 s after), start the lab Asterisk, run `pytest -m asterisk`, always stop it.
# Needs root (debootstrap, chroot, bind mounts). Run from anywhere; extra arguments go to pytest.
# The exit status is pytest's: a failing (or not run) live test fails CI.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

# The live tests run on SQLite and on PostgreSQL, like the main suite; .ci/run sets this.
export CALLD_TEST_PG_URL="${CALLD_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/calld_test}"
export CALLD_LAB_ASTERISK=1

cd "$ROOT"
[ -x .venv/bin/pytest ] || make .venv/.installed-stamp

# One lab Asterisk per machine: concurrent runs (several checkouts' .ci/run) take turns.
lock_dir="$(dirname "${CALLD_LAB_DIR:-/var/tmp/calld-lab/asterisk-chroot}")"
mkdir -p "$lock_dir"
exec 9>"$lock_dir/ci.lock"
flock 9

"$HERE/provision.sh"
"$HERE/start.sh"
trap '"$HERE/stop.sh"' EXIT

# -rs lists skips; a skipped live test means the lab was not used, which must not pass silently.
out="$(mktemp)"
status=0
.venv/bin/pytest -m asterisk -q -rs -p no:cacheprovider "$@" 2>&1 | tee "$out" || status=$?
if [ "$status" -eq 0 ] && grep -q '^SKIPPED' "$out"; then
    echo "live Asterisk tests were skipped: failing" >&2
    status=1
fi
rm -f "$out"
exit "$status"
