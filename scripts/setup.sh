#!/usr/bin/env bash
# Sets up everything the collection's demo, tests and benchmarks need on a Debian or
# Ubuntu machine (any release: nothing here names one), idempotently:
#   1. Debian packages: every program a step, the demo or a benchmark runs (list below);
#      the ones this run installed are recorded in .build/setup/installed-packages,
#      which scripts/clean.sh --packages removes again.
#   2. a Python >= 3.12 for the controller (ansible-core 2.20+ needs it), found on the
#      machine or installed from the distribution;
#   3. .venv with ansible-core, ansible-lint, molecule, galaxy-importer and the test
#      tools (requirements-dev.txt); its bin/activate also exports ANSIBLE_HOME=.build/ansible
#      (this clone's own Ansible home: molecule's state, and the collections molecule
#      installs or finds there, containers.podman included) and
#      SYSOPS_FLEET_CLONE (a hash of this clone's path, in the molecule scenarios'
#      container names), and deactivate gives them back;
#   4. .build/collections/ansible_collections/sysops/fleet, a link to this clone, so that
#      sysops.fleet.* resolves from the repo root (ansible.cfg), and
#      .build/ansible/collections/ansible_collections/containers/podman, unpacked from the
#      "ansible" wheel on PyPI (molecule's podman driver needs it; Galaxy is unreachable);
#   5. .build/podman/containers.conf: podman settings for this machine (runc, cgroupfs,
#      ulimits within the hard limits, catatonit), used through CONTAINERS_CONF only;
#   6. the version matrix (tests/matrix/versions.txt): one venv per tested ansible-core but the
#      newest (that one is .venv), .build/matrix/ansible-core-VERSION, on the machine's python3
#      where that version supports it, else the oldest Python in range found; the oldest claimed
#      version's also gets what the unit and integration tests need. Each is made again only
#      when what it should hold changed (a stamp inside it); a version for which the machine
#      has no Python in range is left out, saying so (scripts/test.sh matrix then skips it).
# Nothing outside the clone is changed but the Debian packages (and, once the tests ran,
# podman's images and containers: scripts/clean.sh removes them).
# Usage: scripts/setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"

# Every program the scripts and tests run, by package (audited against scripts/, tests/
# and the molecule scenarios; "What setup installs" in docs/testing.md lists them too):
APT_PACKAGES=(
    iputils-ping fping nmap nftables iproute2 procps  # the sweep, the loopback lab, the reference tools
    cron logrotate                                # the watcher's cron entries (crontab); its log rotation (attack suite)
    podman runc conmon catatonit                  # molecule scenarios and the fleet test (rootful podman, --init)
    netavark aardvark-dns iptables                # podman's networks; netavark runs iptables for them
    debootstrap debian-archive-keyring            # the test images, built without a registry
    openssh-client                                # the fleet test logs in to its hosts over SSH (ssh, ssh-keygen)
    shellcheck git                                # ansible-test sanity (shellcheck; git for the copy it tests)
    python3 ca-certificates                       # the scripts' own Python (tests/lab.py, checks); PyPI over TLS
    python3-venv                                  # the machine's python3 makes the version matrix's venvs (2.14-2.19 on 3.11)
    prometheus-node-exporter prometheus           # the watcher's metrics: a real node_exporter scraped by the tests,
                                                  # promtool (in "prometheus") checks the .prom file and the alert rule
    chromium fonts-liberation                     # the HTML reports rendered headless in the unit tests (file:// only); Arial-metric fonts
)
# Packages above that also ship a network service the tests never use: the tests start their
# own node_exporter on 127.0.0.1; the packaged services are stopped and disabled when this run
# installed them on a systemd host, so nothing listens on :9100 or :9090.
QUIET_SERVICES=(prometheus-node-exporter.service prometheus.service)

install_apt_packages() {
    local missing=() unknown=() p record="$ROOT/.build/setup/installed-packages"
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    for p in "${missing[@]}"; do
        # a package this release does not have (e.g. netavark on an older Ubuntu) is skipped, not fatal
        apt-cache show "$p" >/dev/null 2>&1 || unknown+=("$p")
    done
    [ ${#unknown[@]} -eq 0 ] || log "not available on this release, skipped: ${unknown[*]}"
    local wanted=()
    for p in "${missing[@]}"; do [[ " ${unknown[*]} " == *" $p "* ]] || wanted+=("$p"); done
    [ ${#wanted[@]} -eq 0 ] && return 0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
    mkdir -p "$(dirname "$record")"
    printf '%s\n' "${wanted[@]}" >> "$record"
    quiet_services "${wanted[@]}"
}

# quiet_services PACKAGE...: stop and disable the QUIET_SERVICES those packages brought (systemd only).
quiet_services() {
    local unit p
    [ -d /run/systemd/system ] || return 0
    for unit in "${QUIET_SERVICES[@]}"; do
        for p in "$@"; do
            [ "$p.service" = "$unit" ] || continue
            log "stopping and disabling $unit (installed for its programs only)"
            as_root systemctl disable --now "$unit" >/dev/null 2>&1 || log "could not stop $unit"
        done
    done
}

install_apt_packages "${APT_PACKAGES[@]}"

PY="$(find_controller_python || true)"
if [ -z "$PY" ]; then
    log "no Python >= 3.12 found; trying the distribution's packages"
    for v in 3.13 3.12 3.14; do
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$v" "python$v-venv" >/dev/null 2>&1; then
            mkdir -p "$ROOT/.build/setup"
            printf '%s\n' "python$v" "python$v-venv" >> "$ROOT/.build/setup/installed-packages"
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
    # (pip's "Location ... is ignored" notes about this kind of machine's local indexes are noise)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 \
        | { grep -v '^WARNING: Location' >&2 || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip could not install requirements-dev.txt into $VENV (see above)"
    "$VENV/bin/python" -m pip check >/dev/null || die "the requirements in $VENV conflict: $("$VENV/bin/python" -m pip check)"
    echo "$WANT" > "$STAMP"
fi

# .venv/bin/activate: this clone's Ansible home and id, given back by deactivate.
install_activate_hook() {
    local activate="$VENV/bin/activate" begin="# >>> sysops.fleet setup" end="# <<< sysops.fleet setup"
    sed -i "/$begin/,/$end/d" "$activate"
    if grep -q '^deactivate () {$' "$activate"; then
        sed -i "/^deactivate () {\$/a\\
    $begin: give ANSIBLE_HOME back, drop SYSOPS_FLEET_CLONE\\
    if [ -n \"\${_SYSOPS_FLEET_ANSIBLE_HOME_SAVED:-}\" ] ; then\\
        if [ \"\$_SYSOPS_FLEET_ANSIBLE_HOME_SAVED\" = - ] ; then unset ANSIBLE_HOME ; else export ANSIBLE_HOME=\"\${_SYSOPS_FLEET_ANSIBLE_HOME_SAVED#+}\" ; fi\\
        unset _SYSOPS_FLEET_ANSIBLE_HOME_SAVED SYSOPS_FLEET_CLONE\\
    fi\\
    $end" "$activate"
    fi
    cat >> "$activate" <<HOOK
$begin: this clone's own Ansible home (molecule's state and the collections
# it uses) and this clone's id (in the molecule scenarios' container names).
_SYSOPS_FLEET_ANSIBLE_HOME_SAVED="\${ANSIBLE_HOME+"+\$ANSIBLE_HOME"}"
_SYSOPS_FLEET_ANSIBLE_HOME_SAVED="\${_SYSOPS_FLEET_ANSIBLE_HOME_SAVED:--}"
export ANSIBLE_HOME="$ROOT/.build/ansible"
export SYSOPS_FLEET_CLONE="$(clone_id "$ROOT")"
$end
HOOK
}
install_activate_hook

COLLECTIONS="$ROOT/.build/collections"
mkdir -p "$COLLECTIONS/ansible_collections/sysops"
ln -sfn "$ROOT" "$COLLECTIONS/ansible_collections/sysops/fleet"
unpack_podman_collection "$ROOT/.build/ansible/collections" "$ROOT/.build/wheels" "$VENV/bin/python"
write_podman_conf "$ROOT/.build/podman/containers.conf" scripts/setup.sh
# make_matrix_venv VERSION PYTHON ARGS...: .build/matrix/ansible-core-VERSION holding ansible-core
# VERSION.* and ARGS (pip install arguments), on PYTHON; made again only if any of it changed.
make_matrix_venv() {
    local version="$1" python="$2" venv want arg
    shift 2
    venv="$(matrix_venv "$ROOT" "$version")"
    want="$({ echo "$python $version $*"; for arg in "$@"; do [ -f "$arg" ] && cat "$arg"; done; } | sha256sum | cut -d' ' -f1)"
    [ "$(cat "$venv/.matrix.sha" 2>/dev/null)" = "$want" ] && [ -x "$venv/bin/ansible" ] && return 0
    log "making $venv (ansible-core $version on $python)"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "could not make $venv with $python"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "ansible-core==$version.*" "$@" 2>&1 \
        | { grep -v '^WARNING: Location' >&2 || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip could not install ansible-core $version into $venv (see above)"
    "$venv/bin/python" -m pip check >/dev/null || die "the requirements in $venv conflict: $("$venv/bin/python" -m pip check)"
    echo "$want" > "$venv/.matrix.sha"
}

# The version matrix: every tested ansible-core but the newest (which is .venv).
make_matrix_venvs() {
    local file="$ROOT/tests/matrix/versions.txt" newest oldest version pymin pymax python args
    newest="$(matrix_newest "$file")" oldest="$(matrix_oldest "$file")"
    while read -r version pymin pymax _; do
        [ "$version" = "$newest" ] && continue
        if ! python="$(python_in_range "$pymin" "$pymax")"; then
            log "no Python $pymin-$pymax here for ansible-core $version: its matrix venv is left out" \
                "(install one, e.g. 'pyenv install $pymax', and run this again)"
            continue
        fi
        args=(-c tests/matrix/constraints.txt)
        [ -f "tests/matrix/constraints-$version.txt" ] && args+=(-c "tests/matrix/constraints-$version.txt")
        [ "$version" = "$oldest" ] && args+=(-r tests/matrix/requirements-tests.txt)
        make_matrix_venv "$version" "$python" "${args[@]}"
    done < <(matrix_lines "$file")
}
make_matrix_venvs
log "ready: $VENV (controller Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))"
