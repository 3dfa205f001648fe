#!/usr/bin/env bash
# Builds the Debian image that the watcher role's molecule scenarios run in,
# without any container registry: debootstrap from the Debian mirror that
# apt already uses, then "podman import".
#
# Contents: Debian bookworm (minbase) + python3, cron, iputils-ping, systemd
# (systemd-sysv, dbus) and procps. CMD is /sbin/init (the systemd scenario);
# the default scenario overrides it with "cron -f".
#
# Rebuilt only when missing or outdated: the image carries a label with a
# hash of this script, the suite, the package list and the mirror.
#
# Usage: scripts/build_image.sh            (needs root: debootstrap and chroot)
# Environment:
#   SYSOPS_FLEET_IMAGE          image name (default localhost/sysops-fleet-molecule:bookworm)
#   SYSOPS_FLEET_DEBIAN_MIRROR  mirror URL (default: the Debian mirror of apt's sources, else deb.debian.org)
#   CONTAINERS_CONF             podman settings (scripts/molecule.sh sets runc and cgroupfs there)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"

IMAGE="${SYSOPS_FLEET_IMAGE:-localhost/sysops-fleet-molecule:bookworm}"
SUITE=bookworm
PACKAGES=python3,cron,iputils-ping,systemd,systemd-sysv,dbus,procps

[ "$(id -u)" -eq 0 ] || die "building the image needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
command -v podman >/dev/null || die "podman is missing: apt-get install podman runc"

debian_mirror() {
    # The first http(s) URI of apt's sources that serves the Debian main suite.
    local uri
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" && $2 ~ /^https?:/ && $2 !~ /security/ && $0 ~ /debian/ {print $2; exit}')"
    if [ -z "$uri" ]; then
        uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk 'tolower($1) == "uris:" && $2 ~ /^https?:/ && $2 ~ /debian/ && $2 !~ /security/ {print $2; exit}')"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${SYSOPS_FLEET_DEBIAN_MIRROR:-$(debian_mirror)}"

STAMP="$( { cat "${BASH_SOURCE[0]}"; echo "$SUITE $PACKAGES $MIRROR"; } | sha256sum | cut -c1-16)"
if podman image exists "$IMAGE" \
    && [ "$(podman image inspect --format '{{ index .Labels "sysops.fleet.stamp" }}' "$IMAGE" 2>/dev/null)" = "$STAMP" ]; then
    log "image $IMAGE is up to date ($STAMP)"
    exit 0
fi

WORK="$(mktemp -d /var/tmp/sysops-fleet-rootfs.XXXXXX)"
trap 'rm -rf --one-file-system "$WORK"' EXIT
log "debootstrap $SUITE from $MIRROR into $WORK (packages: $PACKAGES)"
started=$SECONDS
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$WORK/rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# Make it a container: no stale machine identity, no apt caches, no getty.
rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
: > "$WORK/rootfs/etc/machine-id"
rm -f "$WORK/rootfs/var/lib/dbus/machine-id" "$WORK/rootfs/etc/hostname"
for unit in getty.target console-getty.service systemd-logind.service; do
    ln -sf /dev/null "$WORK/rootfs/etc/systemd/system/$unit"
done

log "importing into podman as $IMAGE"
tar --numeric-owner --xattrs --xattrs-include="*" -C "$WORK/rootfs" -cf - . \
    | podman import --quiet \
        --change 'CMD ["/sbin/init"]' \
        --change "LABEL sysops.fleet.stamp=$STAMP" \
        --change 'ENV container=podman' \
        - "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - started))s"
