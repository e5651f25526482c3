#!/usr/bin/env bash
# Stop the lab Asterisk (core stop now, then TERM/KILL by pid if needed) and unmount the chroot binds.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pid=""
[ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE")

if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    chroot "$LAB_DIR" /usr/sbin/asterisk -rx "core stop now" >/dev/null 2>&1 || true
    for sig in "" TERM KILL; do
        [ -n "$sig" ] && kill -s "$sig" "$pid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break 2
            sleep 0.2
        done
        log "asterisk (pid $pid) still running${sig:+ after $sig}"
    done
    kill -0 "$pid" 2>/dev/null && { log "could not stop pid $pid"; exit 1; }
    log "asterisk stopped (pid $pid)"
else
    log "not running"
fi
rm -f "$PID_FILE"
# WebRTC softphones (issue 23): the lab's coturn goes with it.
"$HERE/webrtc.sh" stop

if [ "${CALLD_LAB_KEEP_MOUNTS:-0}" != 1 ]; then
    for d in dev sys proc; do
        if [ -d "$LAB_DIR/$d" ] && is_mounted "$LAB_DIR/$d"; then umount "$LAB_DIR/$d" || umount -l "$LAB_DIR/$d"; fi
    done
fi
