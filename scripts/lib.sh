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
