# shellcheck shell=bash
# Shared settings for the lab scripts (sourced, not executed).
LAB_DIR="${CALLD_LAB_DIR:-/var/tmp/calld-lab/asterisk-chroot}"
LAB_STATE="$(dirname "$LAB_DIR")"
PID_FILE="${CALLD_LAB_PIDFILE:-$LAB_STATE/asterisk.pid}"
AMI_HOST=127.0.0.1
AMI_PORT=5038
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[lab] %s\n' "$*" >&2; }

# The mirror is whatever the host's apt uses; never hard-code a host name.
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        log "cannot read URIs: from /etc/apt/sources.list.d/debian.sources"
        return 1
    fi
    printf '%s\n' "$uri"
}

is_mounted() { mountpoint -q "$1"; }

mount_binds() {
    local d
    for d in proc sys dev; do
        mkdir -p "$LAB_DIR/$d"
        if ! is_mounted "$LAB_DIR/$d"; then
            mount --bind "/$d" "$LAB_DIR/$d"
        fi
    done
}

elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
