#!/usr/bin/env bash
# Removes what the setup, the demo and the tests made on this machine, for this clone:
#   - the demo's watcher (scripts/demo.sh: ~/sysops-fleet-demo and its entries in the user's
#     crontab), when this clone installed it (its program's interpreter is inside this clone):
#     removed as "scripts/demo.sh remove" does, daemon stopped, before .venv goes (the cron
#     entries would otherwise fail every few minutes on the missing interpreter); with .venv
#     already gone, the daemon is stopped with the machine's python3 and the entries and files
#     are removed by this script. A demo watcher another clone installed is left alone;
#   - the molecule scenarios' containers of this clone (names carry its id) and the fleet
#     test's containers and network, if a killed run left them;
#   - the images the tests built (localhost/sysops-fleet-*), unless --keep-images, but only
#     those no container was made from, and none at all while a run of any clone uses them
#     (it holds the images lock, scripts/lib.sh; the lock is taken here while removing);
#   - .venv and .build (the venvs, collections, molecule state, podman settings, docs);
#   - with --packages, also the Debian packages scripts/setup.sh installed on this machine
#     (recorded in .build/setup/installed-packages; asks apt to remove exactly those).
# Usage: scripts/clean.sh [--packages] [--keep-images]
# The functions are tested alone (tests/unit/scripts/test_clean.py sources this file: nothing
# runs unless it is executed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib.sh"

# The demo's prefix (inventory/localhost.yml's watcher_root) and the program the role puts there.
demo_prefix() { echo "$HOME/sysops-fleet-demo"; }
demo_program() { echo "$1/opt/sysops-fleet/bin/fleet-watcher"; }

# demo_watcher_owner PREFIX CLONE: "this" if the watcher under PREFIX was installed from CLONE
# (the interpreter on its first line is inside CLONE), "other" if from elsewhere, "none" if none.
demo_watcher_owner() {
    local program first
    program="$(demo_program "$1")"
    [ -f "$program" ] || { echo none; return 0; }
    first="$(head -c 4096 "$program" | head -n1)"
    case "$first" in "#!$2/"*) echo this ;; *) echo other ;; esac
}

# crontab_without_demo PREFIX: the crontab on stdin without the demo watcher's entries under
# PREFIX (each job line naming PREFIX's program, and the "#Ansible: sysops.fleet watcher ..."
# line Ansible's cron module wrote above it); every other line is kept as it was.
crontab_without_demo() {
    awk -v program="$(demo_program "$1") " '
        /^#Ansible: sysops\.fleet watcher / { held = $0; next }
        index($0 " ", program) > 0 { held = ""; next }
        { if (held != "") print held; held = ""; print }
        END { if (held != "") print held }'
}

# remove_demo_watcher CLONE: remove the demo watcher if CLONE installed it (see the header).
remove_demo_watcher() {
    local clone="$1" prefix owner rest
    prefix="$(demo_prefix)"
    owner="$(demo_watcher_owner "$prefix" "$clone")"
    case "$owner" in
        none) return 0 ;;
        other) log "kept the demo watcher in $prefix: another clone installed it (its scripts/clean.sh removes it)"; return 0 ;;
    esac
    if [ -x "$clone/.venv/bin/ansible-playbook" ]; then
        log "removing the demo watcher in $prefix (ansible-playbook playbooks/watcher.yml -e watcher_state=absent)"
        (cd "$clone" && PATH="$clone/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$clone/.build/collections" \
            ansible-playbook playbooks/watcher.yml -e watcher_state=absent >/dev/null) && return 0
        log "the playbook could not remove it; removing it here"
    fi
    log "stopping the demo watcher in $prefix and removing its crontab entries and files"
    python3 -I "$(demo_program "$prefix")" stop --pidfile "$prefix/run/sysops-fleet/watcher.pid" --user "$(id -un)" \
        >/dev/null 2>&1 || log "fleet-watcher stop failed (not running?)"
    if rest="$(crontab -l 2>/dev/null)"; then
        rest="$(crontab_without_demo "$prefix" <<<"$rest")"
        if [ -n "$(tr -d '[:space:]' <<<"$rest")" ]; then crontab - <<<"$rest"; else crontab -r; fi
    fi
    rm -rf --one-file-system "$prefix"
}

# removable_images IMAGES CONTAINERS: of the localhost/sysops-fleet-* images in IMAGES ("NAME:TAG ID"
# per line, as podman images prints them), those no container in CONTAINERS ("IMAGE ID" per line,
# as podman ps -a prints them) was made from, by name or by id; one NAME:TAG per line.
removable_images() {
    local name id image_id used
    while read -r name id; do
        [[ "$name" == localhost/sysops-fleet-* ]] || continue
        used=0
        while read -r image image_id; do
            if [ "$image" = "$name" ] || [ "${image_id:0:12}" = "${id:0:12}" ]; then used=1; fi
        done <<<"$2"
        [ $used -eq 1 ] || echo "$name"
    done <<<"$1"
}

# remove_images: the removable images, while holding the images lock exclusively; none if a run
# of any clone holds it (shared) or no lock can be taken.
remove_images() {
    local image images containers
    if ! { [ -w "$IMAGES_LOCK" ] || [ -w "$(dirname "$IMAGES_LOCK")" ]; } || ! exec 8>>"$IMAGES_LOCK"; then
        log "kept the images: cannot open the images lock $IMAGES_LOCK"; return 0
    fi
    if ! flock -n -x 8; then
        log "kept the images: a run of some clone is using them (molecule, fleet, fresh machine or benchmark;" \
            "it holds $IMAGES_LOCK); run scripts/clean.sh again later"
        exec 8>&-
        return 0
    fi
    images="$(podman images --format '{{.Repository}}:{{.Tag}} {{.ID}}')"
    containers="$(podman ps -a --format '{{.Image}} {{.ImageID}}')"
    for image in $(removable_images "$images" "$containers"); do
        log "removing image $image"; podman rmi "$image" >/dev/null || true
    done
    for image in $(printf '%s\n' "$images" | awk '$1 ~ /^localhost\/sysops-fleet-/ {print $1}'); do
        removable_images "$images" "$containers" | grep -qxF "$image" || log "kept image $image: a container was made from it"
    done
    exec 8>&-
}

# remove_containers: this clone's molecule containers and the fleet test's leftovers.
remove_containers() {
    local id c
    id="$(clone_id "$ROOT")"
    for c in $(podman ps -a --format '{{.Names}}' | grep -E "^(sysops-fleet-$id-|fleettest-)" || true); do
        log "removing container $c"; podman rm -f -t 0 "$c" >/dev/null
    done
    if podman network exists fleettest-net; then log "removing network fleettest-net"; podman network rm -f fleettest-net >/dev/null; fi
}

main() {
    local packages=0 images=1 arg record pkgs
    for arg in "$@"; do
        case "$arg" in
            --packages) packages=1 ;;
            --keep-images) images=0 ;;
            *) die "usage: scripts/clean.sh [--packages] [--keep-images]" ;;
        esac
    done
    cd "$ROOT"
    remove_demo_watcher "$ROOT"
    if command -v podman >/dev/null && [ "$(id -u)" -eq 0 ]; then
        remove_containers
        [ $images -eq 0 ] || remove_images
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
}

[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
