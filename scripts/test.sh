#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test of the collection:
#   sanity       ansible-test sanity, on every Python the collection claims
#                that this machine has (scripts/ansible_test.sh)
#   lint         ansible-lint, production profile
#   unit         pytest tests/unit (real processes, real ping to loopback)
#   integration  ansible-test integration: every target under
#                tests/integration/targets (real sweeps inside a network
#                namespace made and removed by the test; needs root)
#   adhoc        the short module name from the repo root, and the built
#                collection tarball installed and used by its FQCN
#   molecule     the watcher role's scenarios (default: cron keepalive,
#                systemd: the unit) in podman, image built with debootstrap
#   fleet        playbooks/site.yml over 4 podman containers on an internal
#                network made by the test, one stopped (scripts/fleet.sh;
#                after molecule, which unpacks containers.podman)
# Prints one line per step and ends with "N passed, N failed".
# Usage: scripts/test.sh [step ...]      (default: all steps)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
. "$ROOT/scripts/lib.sh"

bash "$ROOT/scripts/setup.sh" || die "setup failed"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

step_sanity() { bash "$ROOT/scripts/ansible_test.sh" sanity; }

step_lint() { ansible-lint --profile production --strict; }

step_unit() { python -m pytest -q -p no:cacheprovider tests/unit; }

step_integration() {
    [ "$(id -u)" -eq 0 ] || { log "integration tests need root (network namespaces)"; return 1; }
    bash "$ROOT/scripts/ansible_test.sh" integration
}

step_molecule() {
    [ "$(id -u)" -eq 0 ] || { log "the molecule scenarios need root (rootful podman)"; return 1; }
    bash "$ROOT/scripts/molecule.sh"
}

step_fleet() {
    [ "$(id -u)" -eq 0 ] || { log "the fleet scenario needs root (rootful podman)"; return 1; }
    bash "$ROOT/scripts/fleet.sh"
}

step_adhoc() {
    local out tmp
    out="$(ansible localhost -m ping_sweep -a 'targets=127.0.0.1' 2>&1)" || { echo "$out"; return 1; }
    if ! grep -q '"alive": \[' <<<"$out" || ! grep -q '127.0.0.1' <<<"$out"; then echo "$out"; return 1; fi
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    ansible-galaxy collection build --output-path "$tmp" --force >/dev/null || return 1
    out="$(cd "$tmp" && export ANSIBLE_COLLECTIONS_PATH="$tmp/installed" &&
        ansible-galaxy collection install --force -p "$tmp/installed" "$tmp"/sysops-fleet-*.tar.gz >/dev/null &&
        ansible localhost -c local -i localhost, -e ansible_python_interpreter="$ROOT/.venv/bin/python" \
            -m sysops.fleet.ping_sweep -a 'targets=127.0.0.1-3 method=ping' 2>&1)" || { echo "$out"; return 1; }
    grep -q '"total": 3' <<<"$out" || { echo "$out"; return 1; }
}

STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(unit integration adhoc lint sanity molecule fleet)
passed=0 failed=0 failures=()
for step in "${STEPS[@]}"; do
    log "---- $step"
    started=$SECONDS
    if "step_$step"; then
        passed=$((passed + 1)); log "---- $step passed ($((SECONDS - started))s)"
    else
        failed=$((failed + 1)); failures+=("$step"); log "---- $step FAILED ($((SECONDS - started))s)"
    fi
done
[ $failed -eq 0 ] || log "failed steps: ${failures[*]}"
echo "steps: $passed passed, $failed failed"
[ $failed -eq 0 ]
