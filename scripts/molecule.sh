#!/usr/bin/env bash
# Runs the molecule scenarios of roles/watcher offline (no registry, no Galaxy):
#   default  a plain container, catatonit as PID 1 and the cron daemon: the
#            daemon is checked from /proc (parent 1, no session leader, no
#            terminal, cwd /, umask 022, locked pidfile, log), a second start
#            is refused, kill -9 is healed by the cron keepalive, which takes
#            over the stale pidfile, SIGTERM removes the pidfile; then absent.
#   systemd  systemd as PID 1: the unit starts, survives a restart; then absent.
#
# What it sets up, every run (idempotent):
#   1. podman settings in .build/molecule/containers.conf, used through
#      CONTAINERS_CONF (the machine's own podman configuration is not
#      touched): runc, the cgroupfs manager, open-file limits within the
#      host's hard limit, catatonit as the --init binary.
#   2. the image (scripts/build_image.sh: debootstrap + podman import),
#      rebuilt only when missing or outdated.
#   3. containers.podman, which molecule's podman driver needs, unpacked from
#      the "ansible" wheel on PyPI into .build/molecule/collections (pip
#      download once, kept in .build/molecule/wheels).
#   4. molecule test -s SCENARIO for each scenario, from roles/watcher.
#
# Usage: scripts/molecule.sh [scenario ...]     (default: default systemd; needs root)
# Exits non-zero if any scenario fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

VENV="${SYSOPS_FLEET_VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/molecule" ] || die "no molecule in $VENV: run scripts/setup.sh first"
[ "$(id -u)" -eq 0 ] || die "the molecule scenarios need root (rootful podman, debootstrap)"
for tool in podman runc; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install podman runc catatonit"
done
export PATH="$VENV/bin:$PATH"
WORK="$ROOT/.build/molecule"
mkdir -p "$WORK"

# --- 1. podman settings ----------------------------------------------------------
write_podman_conf "$WORK/containers.conf" scripts/molecule.sh
export CONTAINERS_CONF="$WORK/containers.conf"

# --- 2. the image ---------------------------------------------------------------
bash "$ROOT/scripts/build_image.sh"

# --- 3. containers.podman from PyPI ---------------------------------------------
COLLECTIONS="$WORK/collections"
if [ ! -f "$COLLECTIONS/ansible_collections/containers/podman/MANIFEST.json" ]; then
    mkdir -p "$WORK/wheels"
    wheel="$(find "$WORK/wheels" -maxdepth 1 -name 'ansible-[0-9]*.whl' | sort | tail -n1)"
    if [ -z "$wheel" ]; then
        log "downloading the ansible wheel from PyPI (for containers.podman)"
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps ansible -d "$WORK/wheels"
        wheel="$(find "$WORK/wheels" -maxdepth 1 -name 'ansible-[0-9]*.whl' | sort | tail -n1)"
    fi
    log "unpacking containers.podman from $(basename "$wheel")"
    rm -rf "$COLLECTIONS"
    "$VENV/bin/python" - "$wheel" "$COLLECTIONS" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1:3]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith("ansible_collections/containers/podman/")]
    if not members:
        sys.exit(f"{wheel} holds no containers.podman collection")
    archive.extractall(dest, members)
EOF
fi
# A snapshot of the collection (the checkout's tracked and untracked-not-ignored
# files), so that edits made while the scenarios run cannot change what the
# idempotence step copies, and the role runs as from an installed collection.
SNAPSHOT="$WORK/snapshot"
rm -rf "$SNAPSHOT"
mkdir -p "$SNAPSHOT/ansible_collections/sysops/fleet"
git -C "$ROOT" ls-files -z -co --exclude-standard \
    | grep -zv -e '^\.build/' -e '^\.venv/' \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$SNAPSHOT/ansible_collections/sysops/fleet"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS:$SNAPSHOT"

# --- 4. the scenarios -------------------------------------------------------------
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(default systemd)
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}" PY_COLORS="${PY_COLORS:-0}" ANSIBLE_NOCOLOR=1
cd "$SNAPSHOT/ansible_collections/sysops/fleet/roles/watcher"
failed=()
for scenario in "${SCENARIOS[@]}"; do
    log "molecule test -s $scenario"
    started=$SECONDS
    if molecule test -s "$scenario"; then
        log "scenario $scenario passed ($((SECONDS - started))s)"
    else
        log "scenario $scenario FAILED ($((SECONDS - started))s)"
        failed+=("$scenario")
    fi
done
[ ${#failed[@]} -eq 0 ] || die "failed molecule scenarios: ${failed[*]}"
log "molecule: ${#SCENARIOS[@]} scenario(s) passed"
