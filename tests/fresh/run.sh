#!/usr/bin/env bash
# The README's test command on a fresh Debian machine of another release, the way an
# outsider meets it: a privileged container of a bare Debian (debootstrap minbase plus
# systemd, scripts/build_image.sh molecule RELEASE: no Python, no git, no podman, no
# iptables...) gets a copy of this clone's files and runs ./scripts/test.sh STEP... in it.
# Whatever setup.sh does not install is not there, so a missing package fails here.
#
#   tests/fresh/run.sh RELEASE [STEP [ARG...]]...     e.g. tests/fresh/run.sh trixie unit lint
#
# RELEASE: bullseye, bookworm or trixie. Steps as for scripts/test.sh (default: all of them;
# molecule and fleet then run podman inside the container, with its storage on a
# directory of the host, removed afterwards). Needs root and podman. Packets: the
# container's own loopback, its own podman networks, and the Debian and PyPI mirrors.
# Environment: FRESH_KEEP=1 keeps the container's work directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/lib.sh"
[ $# -ge 1 ] || die "usage: tests/fresh/run.sh bullseye|bookworm|trixie [STEP [ARG...]]..."
RELEASE="$1"
shift
[ "$(id -u)" -eq 0 ] || die "needs root (privileged podman container)"
write_podman_conf "$ROOT/.build/podman/containers.conf" tests/fresh/run.sh
export CONTAINERS_CONF="$ROOT/.build/podman/containers.conf"
bash "$ROOT/scripts/build_image.sh" molecule "$RELEASE"

WORK="$(mktemp -d /var/tmp/sysops-fleet-fresh.XXXXXX)"
NAME="sysops-fleet-fresh-$(clone_id "$ROOT")-$RELEASE"
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    if [ "${FRESH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf --one-file-system "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/src" "$WORK/containers"
# the clone's tracked and untracked-but-not-ignored files, as a fresh clone would have them
git -C "$ROOT" ls-files -z -co --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done \
    | tar -C "$ROOT" --null -T - -cf - | tar -xf - -C "$WORK/src"
git -C "$WORK/src" init -q
git -C "$WORK/src" add -A

log "fresh $RELEASE container: ./scripts/test.sh $*"
started=$SECONDS
set +e
# What this kind of machine has before any setup and a bare image lacks: the CA bundle its
# network path to the package registries needs, and the variables that point programs at it.
TRUST=()
for var in SSL_CERT_FILE PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; do
    [ -n "${!var:-}" ] && [ -f "${!var}" ] && TRUST+=(-e "$var=/etc/sysops-fleet-fresh/ca.crt")
done
[ ${#TRUST[@]} -eq 0 ] || TRUST+=(-v "$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile)'):/etc/sysops-fleet-fresh/ca.crt:ro")
podman run --name "$NAME" --privileged --init --hostname "fresh-$RELEASE" "${TRUST[@]}" \
    -v "$WORK/src:/root/sysops-fleet" -v "$WORK/containers:/var/lib/containers" \
    -w /root/sysops-fleet -e HOME=/root -e TERM=dumb \
    "localhost/sysops-fleet-molecule:$RELEASE" \
    bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null \
        && git config --global --add safe.directory "*" && exec ./scripts/test.sh "$@"' test "$@"
rc=$?
set -e
log "fresh $RELEASE container: ./scripts/test.sh exited $rc after $((SECONDS - started))s"
exit $rc
