#!/usr/bin/env bash
# The molecule scenarios' dependency step (dependency: shell), run by "molecule test",
# "molecule converge" and the others before anything else:
#   1. writes this machine's podman settings (.build/podman/containers.conf, which the
#      scenarios' provisioner env hands to podman as CONTAINERS_CONF): runc, cgroupfs,
#      ulimits within the hard limits of the shell molecule runs in, catatonit for --init;
#   2. builds every image named on the command line that is a local one
#      (localhost/sysops-fleet-KIND:SUITE, scripts/build_image.sh: debootstrap, no registry)
#      and is missing or outdated; other images are left to podman, which pulls them when
#      the platform is created (SYSOPS_FLEET_MOLECULE_IMAGE pointing at a registry).
# containers.podman, which the podman driver needs before this step runs, comes from
# scripts/setup.sh (.build/collections, found through the venv's ANSIBLE_HOME) or, on a
# machine that reaches Galaxy, from molecule itself.
# Usage (from molecule.yml): dependency.sh IMAGE...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
if [ ! -f "$ROOT/scripts/lib.sh" ]; then
    echo "dependency.sh: this role is not inside a clone of the sysops.fleet repository ($ROOT has no" \
         "scripts/), so the local images cannot be built here: point SYSOPS_FLEET_MOLECULE_IMAGE at a" \
         "registry's Debian images, e.g. SYSOPS_FLEET_MOLECULE_IMAGE=docker.io/library/debian" >&2
    for image in "$@"; do case "$image" in localhost/sysops-fleet-*) exit 1 ;; esac; done
    exit 0
fi
. "$ROOT/scripts/lib.sh"

# The images stay while this molecule run lasts: scripts/clean.sh of any clone keeps them.
hold_images_lock "$(ancestor_named molecule)"
write_podman_conf "$ROOT/.build/podman/containers.conf" "the molecule scenarios' dependency step"
export CONTAINERS_CONF="$ROOT/.build/podman/containers.conf"

for image in "$@"; do
    case "$image" in
        localhost/sysops-fleet-*:*)
            kind="${image#localhost/sysops-fleet-}"
            bash "$ROOT/scripts/build_image.sh" "${kind%%:*}" "${image##*:}" ;;
        *) log "image $image: not a local one, podman pulls it if missing" ;;
    esac
done
