#!/usr/bin/env bash
# Removes what the setup and the tests made on this machine, for this clone:
#   - the molecule scenarios' containers of this clone (names carry its id) and the fleet
#     test's containers and network, if a killed run left them;
#   - the images the tests built (localhost/sysops-fleet-*), unless --keep-images;
#   - .venv and .build (the venv, collections, molecule state, podman settings);
#   - with --packages, also the Debian packages scripts/setup.sh installed on this machine
#     (recorded in .build/setup/installed-packages; asks apt to remove exactly those).
# Usage: scripts/clean.sh [--packages] [--keep-images]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

packages=0 images=1
for arg in "$@"; do
    case "$arg" in
        --packages) packages=1 ;;
        --keep-images) images=0 ;;
        *) die "usage: scripts/clean.sh [--packages] [--keep-images]" ;;
    esac
done

if command -v podman >/dev/null && [ "$(id -u)" -eq 0 ]; then
    id="$(clone_id "$ROOT")"
    for c in $(podman ps -a --format '{{.Names}}' | grep -E "^(sysops-fleet-$id-|fleettest-)" || true); do
        log "removing container $c"; podman rm -f -t 0 "$c" >/dev/null
    done
    podman network exists fleettest-net && { log "removing network fleettest-net"; podman network rm -f fleettest-net >/dev/null; }
    if [ $images -eq 1 ]; then
        for image in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/sysops-fleet-' || true); do
            log "removing image $image"; podman rmi -f "$image" >/dev/null || true
        done
    fi
fi
record="$ROOT/.build/setup/installed-packages"
if [ $packages -eq 1 ]; then
    if [ -s "$record" ]; then
        mapfile -t pkgs < <(sort -u "$record")
        log "removing the Debian packages setup.sh installed: ${pkgs[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${pkgs[@]}"
    else
        log "setup.sh recorded no Debian package it installed (all were there before)"
    fi
    rm -rf "$ROOT/.build/setup"
elif [ -s "$record" ]; then
    log "kept the Debian packages setup.sh installed ($(sort -u "$record" | tr '\n' ' ')); --packages removes them"
fi
log "removing $ROOT/.venv and $ROOT/.build (but the record of installed packages, if any)"
rm -rf "$ROOT/.venv"
[ -d "$ROOT/.build" ] && find "$ROOT/.build" -mindepth 1 -maxdepth 1 ! -name setup -exec rm -rf {} +
rmdir "$ROOT/.build" 2>/dev/null || true
