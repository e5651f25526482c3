#!/usr/bin/env bash
# The lab's WebRTC side (issue 23): `webrtc.sh start` makes (once) the lab CA and the certificate
# Asterisk's HTTPS/WSS server uses, installs it in the chroot and starts coturn on 127.0.0.1:3478;
# `webrtc.sh stop` stops coturn. Called by start.sh and stop.sh.
# Files: $LAB_STATE/webrtc/ca.crt (the CA a browser test trusts), server.crt/.key (127.0.0.1,
# localhost), turnserver.pid, turnserver.log.
set -euo pipefail
. "$(dirname "$0")/common.sh"

WEBRTC_DIR="$LAB_STATE/webrtc"
TURN_PID="$WEBRTC_DIR/turnserver.pid"

make_certs() {
    mkdir -p "$WEBRTC_DIR"
    if [ ! -s "$WEBRTC_DIR/server.crt" ]; then
        log "making the lab CA and the WebSocket TLS certificate in $WEBRTC_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=calld lab CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$WEBRTC_DIR/ca.key" -out "$WEBRTC_DIR/ca.crt" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$WEBRTC_DIR/server.key" -out "$WEBRTC_DIR/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
            > "$WEBRTC_DIR/server.ext"
        openssl x509 -req -in "$WEBRTC_DIR/server.csr" -CA "$WEBRTC_DIR/ca.crt" -CAkey "$WEBRTC_DIR/ca.key" \
            -CAcreateserial -days 825 -extfile "$WEBRTC_DIR/server.ext" -out "$WEBRTC_DIR/server.crt" 2>/dev/null
    fi
    mkdir -p "$LAB_DIR/etc/asterisk/keys"
    install -m 0644 "$WEBRTC_DIR/server.crt" "$LAB_DIR/etc/asterisk/keys/lab-webrtc.crt"
    install -m 0600 "$WEBRTC_DIR/server.key" "$LAB_DIR/etc/asterisk/keys/lab-webrtc.key"
}

ice_host_map() {
    # rtp.conf's [ice_host_candidates]: advertise 127.0.0.1 where Asterisk would name a host address.
    local map="$LAB_DIR/etc/asterisk/rtp_ice_hosts.conf" ip
    : > "$map"
    for ip in $(ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]}'); do
        printf '%s => 127.0.0.1\n' "$ip" >> "$map"
    done
}

turn_running() {
    [ -s "$TURN_PID" ] && kill -0 "$(cat "$TURN_PID")" 2>/dev/null
}

start_turn() {
    command -v turnserver >/dev/null || { log "no turnserver: run provision.sh (installs coturn)"; exit 1; }
    if turn_running; then
        log "coturn already running (pid $(cat "$TURN_PID"))"
        return 0
    fi
    rm -f "$TURN_PID"
    turnserver -c "$HERE/turnserver.conf" -o --pidfile "$TURN_PID" --log-file "$WEBRTC_DIR/turnserver.log" \
        >/dev/null 2>&1
    for _ in $(seq 1 50); do
        if turn_running && ss -lnu 2>/dev/null | grep -q '127.0.0.1:3478 '; then
            log "coturn running (pid $(cat "$TURN_PID")) on 127.0.0.1:3478"
            return 0
        fi
        sleep 0.1
    done
    log "coturn did not start; see $WEBRTC_DIR/turnserver.log"
    exit 1
}

stop_turn() {
    if turn_running; then
        local pid
        pid=$(cat "$TURN_PID")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        log "coturn stopped (pid $pid)"
    fi
    rm -f "$TURN_PID"
}

case "${1:-}" in
    start) make_certs; ice_host_map; start_turn ;;
    stop) stop_turn ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
