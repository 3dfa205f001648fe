#!/usr/bin/env bash
# The README's test command on a fresh Debian machine of another release, the way an
# outsider meets it: a privileged container whose root is a directory on this host's disk,
# holding a bare Debian (debootstrap minbase plus systemd, scripts/build_image.sh molecule
# RELEASE: no Python, no podman, no iptables...) plus what this kind of machine has before
# any setup (its CA for the package registries, pip's settings, git to have a clone), gets a
# copy of this clone's files and runs ./scripts/test.sh STEP... in it. Whatever setup.sh
# does not install is not there, so a missing package fails here.
#
#   tests/fresh/run.sh RELEASE [STEP [ARG...]]...     e.g. tests/fresh/run.sh trixie unit lint
#   tests/fresh/run.sh RELEASE distro-ansible          the distribution's own ansible-core instead
#
# RELEASE: bullseye, bookworm or trixie. Steps as for scripts/test.sh (default: all of them;
# molecule and fleet then run podman inside the container). Needs root and podman. The
# directory is removed afterwards. Packets: the container's own loopback, its own podman
# networks, and the Debian and PyPI mirrors.
# distro-ansible (bookworm or trixie): no setup, no venv; "apt-get install ansible-core" (2.14 on
# Debian 12, 2.19 on 13) and tests/matrix/demo.py with /usr/bin's commands: the collection built
# and installed by that ansible-galaxy, the ad hoc sweep, the demo (site.yml on the container
# itself, twice, then the watcher removed) and ansible-doc, each without a warning (but
# "does not support Ansible version" on Debian 12, whose 2.14 is outside requires_ansible).
# Environment: FRESH_KEEP=1 keeps the container's work directory; FRESH_SUBNET (10.89.99.0/24)
# is the subnet of the network made for it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/lib.sh"
[ $# -ge 1 ] || die "usage: tests/fresh/run.sh bullseye|bookworm|trixie [STEP [ARG...]]..."
RELEASE="$1"
shift
[ "$(id -u)" -eq 0 ] || die "needs root (privileged podman container)"
hold_images_lock $$  # scripts/clean.sh of any clone keeps the images while this runs
write_podman_conf "$ROOT/.build/podman/containers.conf" tests/fresh/run.sh
export CONTAINERS_CONF="$ROOT/.build/podman/containers.conf"
bash "$ROOT/scripts/build_image.sh" molecule "$RELEASE"

WORK="$(mktemp -d /var/tmp/sysops-fleet-fresh.XXXXXX)"
NAME="sysops-fleet-fresh-$(clone_id "$ROOT")-$RELEASE"
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    podman network rm -f "$NAME-net" >/dev/null 2>&1 || true
    if [ "${FRESH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf --one-file-system "$WORK"; fi
}
trap cleanup EXIT
# The machine is a directory on this host's disk (podman --rootfs), not an overlay: its /
# is a real filesystem, as a machine's is, for the disk report and for podman inside it.
mkdir -p "$WORK/rootfs"
cid="$(podman create "localhost/sysops-fleet-molecule:$RELEASE")"
podman export "$cid" | tar -xf - -C "$WORK/rootfs"
podman rm -f "$cid" >/dev/null
# What this kind of machine has before any setup and a bare image lacks: the CA its network
# path to the package registries needs (taken into the system trust once setup installs
# ca-certificates) and pip's settings that point at it.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$WORK/rootfs/etc/pip.conf"
# the clone's tracked and untracked-but-not-ignored files, as a fresh clone would have them
mkdir -p "$WORK/rootfs/root/sysops-fleet"
git -C "$ROOT" ls-files -z -co --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done \
    | tar -C "$ROOT" --null -T - -cf - | tar -xf - -C "$WORK/rootfs/root/sysops-fleet"

# A network of its own whose subnet is not podman's default, so that the podman inside the
# machine can make its default network (10.88.0.0/16) without clashing with this one.
podman network create --subnet "${FRESH_SUBNET:-10.89.99.0/24}" "$NAME-net" >/dev/null
log "fresh $RELEASE machine: ./scripts/test.sh $*"
started=$SECONDS
set +e
# What runs inside: the test command, or (distro-ansible) the demo with the distribution's ansible-core.
INNER='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
    && git init -q && git add -A && exec ./scripts/test.sh "$@"'
if [ "${1:-}" = distro-ansible ]; then
    case "$RELEASE" in
        bookworm) OUTSIDE=--unsupported-ok ;;  # Debian 12's 2.14: tested, outside requires_ansible
        trixie) OUTSIDE= ;;
        *) die "distro-ansible: $RELEASE's own ansible is not one the collection runs on (bookworm or trixie)" ;;
    esac
    INNER="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
        ansible-core python3 >/dev/null && exec python3 tests/matrix/demo.py --bin /usr/bin $OUTSIDE"
    set --
fi
podman run --name "$NAME" --privileged --init --hostname "fresh-$RELEASE" --network "$NAME-net" \
    -w /root/sysops-fleet -e HOME=/root -e TERM=dumb -e PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --rootfs "$WORK/rootfs" bash -c "${INNER//$'\n'/ }" test "$@"
rc=$?
set -e
log "fresh $RELEASE machine: ./scripts/test.sh exited $rc after $((SECONDS - started))s"
exit $rc
