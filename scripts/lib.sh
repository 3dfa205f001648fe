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
    [ -n "$catatonit" ] || die "catatonit is missing (podman --init needs it): apt-get install catatonit"
    cat > "$conf" <<CONF
# Written by $who; used through CONTAINERS_CONF only.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
init_path = "$catatonit"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
}
