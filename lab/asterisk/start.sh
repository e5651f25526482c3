#!/usr/bin/env bash
# Start the lab Asterisk in its chroot with the project's config, and wait for AMI to accept a Login.
# Idempotent: if it is already running, say so and do nothing (run stop.sh first to load new config).
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ -f "$LAB_DIR/.calld-provisioned" ] || { log "not provisioned: run $HERE/provision.sh"; exit 1; }

running_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE")
    # A killed asterisk can linger as a zombie until reaped; that is not "running".
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ] \
        && printf '%s\n' "$pid"
}

ami_login_ok() {
    # A real Login, not just the banner: the user and secret in manager.conf must work.
    timeout 3 bash -c '
        exec 3<>/dev/tcp/'"$AMI_HOST/$AMI_PORT"' || exit 1
        printf "Action: Login\r\nUsername: calld\r\nSecret: calld-lab-secret\r\n\r\n" >&3
        while IFS= read -r line <&3; do
            case "$line" in
                "Response: Success"*) printf "Action: Logoff\r\n\r\n" >&3; exit 0 ;;
                "Response: Error"*) exit 2 ;;
            esac
        done
        exit 1' 2>/dev/null
}

# WebRTC softphones (issue 23): the WSS certificate in the chroot, coturn on 127.0.0.1:3478.
"$HERE/webrtc.sh" start

if pid=$(running_pid); then
    log "already running (pid $pid)"
    exit 0
fi

mount_binds

# Config: the project's files replace the stock ones of the same name.
install -m 0644 "$HERE"/etc/*.conf "$LAB_DIR/etc/asterisk/"

# Hold music: no sound packages are installed, so write 5 s of a 440 Hz tone (8 kHz, 16-bit wav).
moh="$LAB_DIR/var/lib/asterisk/moh/calld-tone.wav"
if [ ! -s "$moh" ]; then
    python3 - "$moh" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(40000)))
PY
fi
mkdir -p "$LAB_DIR/run/asterisk" "$LAB_DIR/var/spool/asterisk/monitor" "$LAB_DIR/var/log/asterisk/cel-custom"
rm -f "$LAB_DIR/run/asterisk/asterisk.pid" "$LAB_DIR/run/asterisk/asterisk.ctl"

t0=$(date +%s.%N)
# Runs as root inside the chroot (no -U): the chroot's asterisk uid may belong to another host user.
chroot "$LAB_DIR" /usr/sbin/asterisk

for _ in $(seq 1 150); do
    # "core waitfullybooted": AMI already answers while modules are still loading.
    if [ -s "$LAB_DIR/run/asterisk/asterisk.pid" ] \
        && timeout 5 chroot "$LAB_DIR" /usr/sbin/asterisk -rx "core waitfullybooted" >/dev/null 2>&1 \
        && ami_login_ok; then
        cp "$LAB_DIR/run/asterisk/asterisk.pid" "$PID_FILE"
        log "asterisk running (pid $(cat "$PID_FILE")), AMI login ok on $AMI_HOST:$AMI_PORT after $(elapsed "$t0") s"
        exit 0
    fi
    sleep 0.2
done
log "AMI did not accept a login within 30 s; see $LAB_DIR/var/log/asterisk/messages.log"
exit 1
