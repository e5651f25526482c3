#!/usr/bin/env bash
# Build (once) a minimal Debian sid chroot with Asterisk for the calld lab.
# Re-runs are a fast no-op when the chroot already has asterisk installed.
# Env: CALLD_LAB_DIR (default /var/tmp/calld-lab/asterisk-chroot).
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ "$(id -u)" -eq 0 ] || { log "must run as root (debootstrap, chroot, mount)"; exit 1; }

APT_OPTS=(-o Acquire::Check-Valid-Until=false)
host_apt_updated=0
host_install() {
    # Install host packages only when missing; apt-get update at most once per run.
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $host_apt_updated -eq 0 ]; then
        apt-get update -qq
        host_apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

start=$(date +%s.%N)

# sipp (package sip-tester) plays the SIP phones; debootstrap builds the chroot; coturn is the
# WebRTC softphones' TURN server (webrtc.sh), openssl makes the lab's CA.
host_install debootstrap sip-tester coturn openssl iproute2

if [ -x "$LAB_DIR/usr/sbin/asterisk" ] && [ -f "$LAB_DIR/.calld-provisioned" ]; then
    mount_binds
    log "already provisioned: $LAB_DIR ($(chroot "$LAB_DIR" asterisk -V 2>/dev/null || echo '?'))"
    log "took $(elapsed "$start") s"
    exit 0
fi

mirror=$(debian_mirror)
mkdir -p "$LAB_STATE"

if [ ! -x "$LAB_DIR/usr/bin/apt-get" ]; then
    log "debootstrap --variant=minbase sid $LAB_DIR $mirror"
    # A half-built chroot from an interrupted run would make debootstrap fail; start clean.
    if [ -d "$LAB_DIR" ]; then
        for d in dev sys proc; do is_mounted "$LAB_DIR/$d" && umount -l "$LAB_DIR/$d"; done
        rm -rf --one-file-system "$LAB_DIR"
    fi
    debootstrap --variant=minbase sid "$LAB_DIR" "$mirror"
fi

mount_binds
cp /etc/resolv.conf "$LAB_DIR/etc/resolv.conf" 2>/dev/null || true
# No daemons may start inside the chroot during package installation.
printf '#!/bin/sh\nexit 101\n' > "$LAB_DIR/usr/sbin/policy-rc.d"
chmod +x "$LAB_DIR/usr/sbin/policy-rc.d"

log "installing asterisk in the chroot"
# The archive is a dated snapshot: its Release files are "expired" (see /work/shared/README.md).
chroot "$LAB_DIR" apt-get "${APT_OPTS[@]}" update -qq
chroot "$LAB_DIR" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends asterisk asterisk-modules
chroot "$LAB_DIR" apt-get clean

touch "$LAB_DIR/.calld-provisioned"
log "provisioned: $(chroot "$LAB_DIR" asterisk -V)"
log "took $(elapsed "$start") s"
