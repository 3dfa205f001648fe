# shellcheck shell=bash
# Shared shell helpers for scripts/*.sh (sourced, not run).
log() { printf '[sysops.fleet] %s\n' "$*" >&2; }
die() { printf '[sysops.fleet] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $* (install sudo or run as root)"; fi
}

# Real interpreter directories (not pyenv shims) for every CPython 3.x found.
python_dirs() {
    local d
    for d in "$HOME"/.pyenv/versions/3.*/bin /root/.pyenv/versions/3.*/bin /usr/local/bin /usr/bin /opt/python*/bin; do
        [ -d "$d" ] && echo "$d"
    done | awk '!seen[$0]++'
}

# A Python >= 3.12 for the controller, newest first; real paths only.
find_controller_python() {
    local cand v
    if [ -n "${SYSOPS_FLEET_PYTHON:-}" ]; then echo "$SYSOPS_FLEET_PYTHON"; return 0; fi
    for v in 3.13 3.12 3.14; do
        for cand in $(command -v "python$v" 2>/dev/null) $(python_dirs | sed "s|\$|/python$v|"); do
            [ -x "$cand" ] || continue
            if "$cand" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
                readlink -f "$cand"; return 0
            fi
        done
    done
    return 1
}

# Podman settings for this kind of machine, written to $1 and used only through
# CONTAINERS_CONF (the machine's own podman configuration is not touched): runc,
# the cgroupfs manager, ulimits within the host's hard limits (podman cannot
# raise a container's process limit above what its own helpers got), and
# catatonit as the --init binary. $2 names the caller in the file's header.
# Written to a temporary file and renamed, so a reader never sees half of it.
write_podman_conf() {
    local conf="$1" who="$2" nofile nproc catatonit candidate
    nofile="$(ulimit -Hn)"
    [ "$nofile" = unlimited ] && nofile=1048576
    nproc="$(ulimit -Hu)"
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; then nproc=4096; fi
    if [ "$nofile" -gt 65536 ]; then nofile=65536; fi
    catatonit="$(command -v catatonit || true)"
    for candidate in /usr/libexec/podman/catatonit /usr/bin/catatonit; do
        [ -z "$catatonit" ] && [ -x "$candidate" ] && catatonit="$candidate"
    done
    [ -n "$catatonit" ] || die "catatonit is missing (podman --init needs it): run scripts/setup.sh"
    mkdir -p "$(dirname "$conf")"
    cat > "$conf.tmp.$$" <<CONF
# Written by $who; used through CONTAINERS_CONF only (the machine's
# own podman settings are not touched).
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
init_path = "$catatonit"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
    mv -f "$conf.tmp.$$" "$conf"
}

# A short, stable id of the clone at $1 (its path, hashed): the molecule scenarios put it
# in their container names, so two clones on one machine never touch each other's.
clone_id() { printf '%s' "$1" | sha256sum | cut -c1-8; }

# The "ansible" wheel on PyPI whose containers.podman the molecule scenarios (podman
# driver) and the fleet test use: Galaxy is unreachable here, PyPI is not.
ANSIBLE_WHEEL_VERSION=14.5.0

# unpack_podman_collection DEST WHEELS PYTHON: containers.podman from the "ansible" wheel
# into DEST/ansible_collections/containers/podman, once; the wheel is kept in WHEELS.
unpack_podman_collection() {
    local dest="$1" wheels="$2" python="$3" wheel
    [ -f "$dest/ansible_collections/containers/podman/MANIFEST.json" ] && return 0
    wheel="$wheels/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl"
    if [ ! -f "$wheel" ]; then
        log "downloading the ansible $ANSIBLE_WHEEL_VERSION wheel from PyPI (for containers.podman)"
        mkdir -p "$wheels"
        "$python" -m pip download -q --disable-pip-version-check --no-deps "ansible==$ANSIBLE_WHEEL_VERSION" \
            -d "$wheels" 2>&1 | { grep -v '^WARNING: Location' >&2 || true; }
        [ -f "$wheel" ] || die "could not download ansible==$ANSIBLE_WHEEL_VERSION from PyPI"
    fi
    log "unpacking containers.podman from $(basename "$wheel") into $dest"
    "$python" - "$wheel" "$dest" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1:3]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith("ansible_collections/containers/podman/")]
    if not members:
        sys.exit(f"{wheel} holds no containers.podman collection")
    archive.extractall(dest, members)
PY
}

# --- the ansible-core version matrix (tests/matrix/versions.txt) -------------------------------

# matrix_lines FILE [TIER]: "VERSION PYTHON_MIN PYTHON_MAX TIER" per tested version, comments
# dropped, oldest first; with TIER only the lines of that tier.
matrix_lines() {
    awk -v tier="${2:-}" '!/^[[:space:]]*(#|$)/ && (tier == "" || $4 == tier) {print $1, $2, $3, $4}' "$1" | sort -V
}

# matrix_oldest FILE / matrix_newest FILE: the oldest and newest claimed version.
matrix_oldest() { matrix_lines "$1" claimed | head -n1 | cut -d' ' -f1; }
matrix_newest() { matrix_lines "$1" claimed | tail -n1 | cut -d' ' -f1; }

# version_in_range V MIN MAX: is the version V (X.Y) between MIN and MAX, both included?
version_in_range() {
    [ "$(printf '%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ] \
        && [ "$(printf '%s\n' "$1" "$3" | sort -V | head -n1)" = "$1" ]
}

# python_in_range MIN MAX: a real interpreter (no pyenv shim) whose X.Y is in [MIN, MAX] and
# that can make venvs: the machine's own python3 if it is one (what the distribution's
# ansible-core runs on), else the oldest one found (python_dirs).
python_in_range() {
    local cand v found=()
    for cand in /usr/bin/python3 $(python_dirs | sed 's|$|/python3|'); do
        [ -x "$cand" ] || continue
        v="$("$cand" -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
        version_in_range "$v" "$1" "$2" || continue
        if [ "$cand" = /usr/bin/python3 ]; then readlink -f "$cand"; return 0; fi
        found+=("$v $(readlink -f "$cand")")
    done
    [ ${#found[@]} -gt 0 ] || return 1
    printf '%s\n' "${found[@]}" | sort -V | head -n1 | cut -d' ' -f2
}

# matrix_venv ROOT VERSION: where setup puts the venv of that ansible-core version.
matrix_venv() { echo "$1/.build/matrix/ansible-core-$2"; }

# --- the images lock: runs that use the localhost/sysops-fleet-* images hold it shared --------
# One lock for the machine, shared by every clone: scripts/clean.sh removes images only when it
# can take it exclusively (no molecule, fleet, fresh-machine or benchmark run of any clone is
# using them). SYSOPS_FLEET_IMAGES_LOCK moves it (the tests of clean.sh use a file of their own).
IMAGES_LOCK="${SYSOPS_FLEET_IMAGES_LOCK:-/run/lock/sysops-fleet-images.lock}"

# hold_images_lock PID: hold the images lock (shared) until process PID exits; returns once it
# is held. A background "flock -s" waits on PID (tail --pid), so no descriptor of the lock leaks
# into the caller's children. Once per shell; a lock directory we may not write means no lock.
# tail's output goes to /dev/null, not to the coproc's pipe: tail -f (coreutils 9) exits at once when
# its output is a pipe nobody reads, and the shell closes its end when it execs (bash -c execs its
# last command), which let the lock go while PID still ran.
hold_images_lock() {
    local pid="$1" line fd
    [ -z "${SYSOPS_FLEET_IMAGES_HELD:-}" ] || return 0
    [ -w "$(dirname "$IMAGES_LOCK")" ] || { log "cannot write $(dirname "$IMAGES_LOCK"): images not locked"; return 0; }
    # shellcheck disable=SC2016  # $0 is the inner sh's first argument, the pid
    coproc IMAGES_HOLDER { exec flock -s -o "$IMAGES_LOCK" sh -c 'echo held; exec tail --pid="$0" -f /dev/null >/dev/null' "$pid" \
        </dev/null 2>/dev/null; }
    fd="${IMAGES_HOLDER[0]}"
    if read -r line <&"$fd" && [ "$line" = held ]; then SYSOPS_FLEET_IMAGES_HELD=1; else log "could not take the images lock $IMAGES_LOCK"; fi
}

# ancestor_named NAME: the pid of the nearest ancestor of this shell whose command line has a
# word NAME or ending in /NAME (e.g. the molecule run a dependency step belongs to), else $PPID.
ancestor_named() {
    local pid="$PPID" word
    while [ "${pid:-0}" -gt 1 ]; do
        for word in $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null); do
            case "$word" in "$1"|*/"$1") echo "$pid"; return 0 ;; esac
        done
        pid="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)"  # (after the command's name)
    done
    echo "$PPID"
}
