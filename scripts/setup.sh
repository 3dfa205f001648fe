#!/usr/bin/env bash
# Sets up everything the collection's demo and tests need on a Debian/Ubuntu
# machine, idempotently:
#   - Debian packages (ping, fping, nftables, iproute2, cron, podman, debootstrap),
#   - a Python >= 3.12 for the controller (ansible-core 2.20+ needs it),
#     found on the machine or installed from the distribution,
#   - .venv with ansible-core, ansible-lint and the test tools,
#   - .build/collections/ansible_collections/sysops/fleet -> this checkout,
#     so that sysops.fleet.* resolves from the repo root.
# Usage: scripts/setup.sh            (prints the venv path at the end)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

# ping/fping/nftables/iproute2: the sweep and its loopback lab; cron: the
# watcher's entries; podman/runc/catatonit/debootstrap: the molecule scenarios
# (image built locally, no registry).
APT_PACKAGES=(iputils-ping fping nftables iproute2 procps cron podman runc catatonit conmon netavark aardvark-dns debootstrap)

install_apt_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_apt_packages "${APT_PACKAGES[@]}"

PY="$(find_controller_python || true)"
if [ -z "$PY" ]; then
    log "no Python >= 3.12 found; trying the distribution's packages"
    for v in 3.13 3.12 3.14; do
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$v" "python$v-venv" >/dev/null 2>&1; then
            break
        fi
    done
    PY="$(find_controller_python || true)"
fi
if [ -z "$PY" ]; then
    die "ansible-core 2.20+ needs Python >= 3.12 on the controller and none was found
(looked on PATH, in ~/.pyenv/versions, /usr/local and /opt, and in apt).
Install one (e.g. 'pyenv install 3.12' or your distribution's python3.12)
and run this again, or point SYSOPS_FLEET_PYTHON at it."
fi

VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    log "creating $VENV with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha"
WANT="$(sha256sum < requirements-dev.txt | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    log "installing Python requirements into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
    echo "$WANT" > "$STAMP"
fi

mkdir -p "$ROOT/.build/collections/ansible_collections/sysops"
ln -sfn "$ROOT" "$ROOT/.build/collections/ansible_collections/sysops/fleet"
log "ready: $VENV (controller Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))"
