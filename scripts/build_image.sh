#!/usr/bin/env bash
# Builds a Debian image for the tests without any container registry:
# debootstrap from the Debian mirror that apt already uses, then "podman import".
#
#   scripts/build_image.sh KIND SUITE
#
# KIND     molecule  minbase plus systemd (systemd-sysv, dbus) and nothing else: no python3,
#                    no cron, no ping. The role's molecule scenarios run on it the way they
#                    run on a registry's debian image: their prepare step installs what the
#                    role needs (roles/watcher/molecule/shared/prepare.yml). CMD /sbin/init.
#          host      a managed host of the fleet test: python3, cron, iputils-ping, procps,
#                    openssh-server, sudo, systemd. CMD /sbin/init. It ships no SSH host key
#                    (the keys openssh-server's install made are removed, so no two containers
#                    share one): whoever starts sshd in it supplies its keys (tests/fleet does,
#                    one per container, and writes its known_hosts from them).
# SUITE    bullseye (Debian 11, Python 3.9), bookworm (12) or trixie (13), whatever
#          release this machine runs.
#
# The image is localhost/sysops-fleet-KIND:SUITE. It is rebuilt only when missing or
# outdated: it carries a label with a hash of this script, the suite, the package list and
# the mirror. Remove the images again with: podman rmi localhost/sysops-fleet-KIND:SUITE
# (scripts/clean.sh removes them all).
#
# Needs root (debootstrap, chroot). Environment:
#   SYSOPS_FLEET_DEBIAN_MIRROR  mirror URL (default: the Debian mirror of apt's sources, else deb.debian.org)
#   CONTAINERS_CONF             podman settings, if any
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"

usage() { die "usage: scripts/build_image.sh molecule|host bullseye|bookworm|trixie"; }
[ $# -eq 2 ] || usage
KIND="$1" SUITE="$2"
case "$KIND" in
    molecule) PACKAGES=systemd,systemd-sysv,dbus ;;
    host) PACKAGES=python3,cron,iputils-ping,procps,openssh-server,sudo,systemd,systemd-sysv,dbus ;;
    *) usage ;;
esac
case "$SUITE" in bullseye|bookworm|trixie) ;; *) usage ;; esac
IMAGE="localhost/sysops-fleet-$KIND:$SUITE"

[ "$(id -u)" -eq 0 ] || die "building the image needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/setup.sh (apt-get install debootstrap)"
command -v podman >/dev/null || die "podman is missing: run scripts/setup.sh (apt-get install podman)"

debian_mirror() {
    # The first http(s) URI of apt's sources that serves the Debian main suites.
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

STAMP="$( { cat "${BASH_SOURCE[0]}"; echo "$KIND $SUITE $PACKAGES $MIRROR"; } | sha256sum | cut -c1-16)"
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
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap $SUITE failed (log above)"; }

# Make it a container: no stale machine identity, no apt caches, no getty; apt's lists are
# dropped as in a registry's image, so whoever installs packages runs apt-get update first.
rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
: > "$WORK/rootfs/etc/machine-id"
rm -f "$WORK/rootfs/var/lib/dbus/machine-id" "$WORK/rootfs/etc/hostname"
for unit in getty.target console-getty.service systemd-logind.service; do
    ln -sf /dev/null "$WORK/rootfs/etc/systemd/system/$unit"
done
rm -f "$WORK/rootfs/etc/ssh/ssh_host_"*

log "importing into podman as $IMAGE"
tar --numeric-owner --xattrs --xattrs-include="*" -C "$WORK/rootfs" -cf - . \
    | podman import --quiet \
        --change 'CMD ["/sbin/init"]' \
        --change "LABEL sysops.fleet.stamp=$STAMP" \
        --change "LABEL sysops.fleet.kind=$KIND" \
        --change 'ENV container=podman' \
        - "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - started))s"
